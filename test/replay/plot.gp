# The replay's plot: gnuplot -e "out='DIR'; tenants=N" test/replay/plot.gp
# (login latency, failed logins per second, rebuild traffic and the service's
# connections, both phases over the same seconds, the incident marked).
budget_ms = 1000
set terminal pngcairo size 1200,900 font ",10" noenhanced
set output out."/replay.png"
set multiplot layout 3,1 title "The incident replayed: ".tenants." tenants, the service's instances start cold (".machine.")"
set grid
set key top right opaque box
set xrange [0:*]
events = real(system("head -1 ".out."/events.dat | cut -d\" \" -f1"))
warm = real(system("grep warm-up ".out."/events.dat | cut -d\" \" -f1"))
set arrow 1 from events, graph 0 to events, graph 1 nohead dt 2 lc rgb "#444444"
set label 1 "cache loss, restart" at events, graph 0.06 right offset -0.5,0
set arrow 2 from warm, graph 0 to warm, graph 1 nohead dt 3 lc rgb "#1f77b4"
set label 2 "with: warm-up" at warm, graph 0.06 offset 0.5,0
set ylabel "login latency (ms, log)"
set logscale y
set yrange [0.1:3000]
plot out."/login_without.dat" using 1:($3 == 1 ? $2 : 1/0) with points pt 7 ps 0.25 lc rgb "#d62728" title "without: login", \
     out."/login_without.dat" using 1:($3 == 0 ? budget_ms * 1.5 : 1/0) with points pt 2 ps 0.4 lc rgb "#8b0000" title "without: failed login", \
     out."/login_with.dat" using 1:($3 == 1 ? $2 : 1/0) with points pt 7 ps 0.25 lc rgb "#1f77b4" title "with config_guard: login", \
     out."/login_with.dat" using 1:($3 == 0 ? budget_ms * 1.5 : 1/0) with points pt 2 ps 0.4 lc rgb "#000080" title "with: failed login"
unset logscale y
set yrange [0:*]
set ylabel "failed logins per second"
plot out."/series_without.dat" using 1:2 with steps lw 2 lc rgb "#d62728" title "without", \
     out."/series_with.dat" using 1:2 with steps lw 2 lc rgb "#1f77b4" title "with config_guard"
set ylabel "rebuild requests per second"
set y2label "service connections"
set y2tics
set xlabel "seconds into the phase"
plot out."/series_without.dat" using 1:3 with lines lc rgb "#d62728" title "without: requests/s", \
     out."/series_without.dat" using 1:4 with lines dt 3 lc rgb "#d62728" title "without: retries/s", \
     out."/series_with.dat" using 1:3 with lines lc rgb "#1f77b4" title "with: requests/s", \
     out."/series_with.dat" using 1:4 with lines dt 3 lc rgb "#1f77b4" title "with: retries/s", \
     out."/series_without.dat" using 1:5 axes x1y2 with lines lw 2 lc rgb "#ff7f0e" title "without: connections", \
     out."/series_with.dat" using 1:5 axes x1y2 with lines lw 2 lc rgb "#2ca02c" title "with: connections"
unset multiplot
