# config_guard: built with PGXS. `make test` runs every suite on a temporary
# cluster (test/run_tests.sh); `make demo` replays the incident
# (test/replay/replay.sh); `make stress` measures a tenant of a million rows.

EXTENSION   = config_guard
EXTVERSION  = $(shell sed -n "s/^default_version = '\(.*\)'/\1/p" $(EXTENSION).control)
MODULE_big  = config_guard
OBJS        = $(patsubst %.cpp,%.o,$(wildcard src/*.cpp src/core/*.cpp))
DATA        = $(wildcard $(EXTENSION)--*.sql)

REGRESS       = $(sort $(basename $(notdir $(wildcard sql/*.sql))))
REGRESS_OPTS  = --load-extension=$(EXTENSION)
ISOLATION     = $(sort $(basename $(notdir $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=$(EXTENSION)
TAP_TESTS     = 1
PROVE_TESTS   = test/t/*.pl
PROVE_FLAGS   = -I test/perl

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)

PG_CXXFLAGS = -std=c++17 -fno-exceptions -fno-rtti -Isrc -MMD -MP \
              -DBOOST_CONTAINER_USER_DEFINED_THROW_CALLBACKS -DBOOST_NO_EXCEPTIONS \
              -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers -Wno-register \
              $(if $(WERROR),-Werror)
SHLIB_LINK += -lstdc++
# libpq: a standby asks the primary for rebuilds (src/standby_rebuild.cpp).
PG_CPPFLAGS += -I$(libpq_srcdir)
SHLIB_LINK_INTERNAL += $(libpq)
# The bitcode rule ignores PG_CXXFLAGS; JIT inlining of this module is not
# needed. `override` wins over the assignment in Makefile.global.
override with_llvm = no

include $(PGXS)

ifeq ($(filter $(MAJORVERSION),15 17 18),)
$(error config_guard supports PostgreSQL 15, 17 and 18; $(PG_CONFIG) reports $(MAJORVERSION))
endif

$(EXTENSION)--$(EXTVERSION).sql: ;

-include $(OBJS:.o=.d)

EXTRA_CLEAN = $(OBJS:.o=.d) build build-fuzz results output_iso tmp_check log build.log build-fuzz.log

.PHONY: test test-matrix demo demo-export stress
test:
	bash test/run_tests.sh
test-matrix:
	bash test/matrix/matrix.sh
demo:
	bash test/replay/replay.sh
demo-export:
	bash test/demo/demo.sh
stress:
	bash test/stress/stress.sh
