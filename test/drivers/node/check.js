// config_guard called the way a Node.js service does, with node-postgres.
//
// Usage: node check.js MODE, MODE being "direct" (every query a named,
// server-side prepared statement) or "pooled" (behind PgBouncer in
// transaction mode: unnamed statements). The connection comes from PGHOST,
// PGPORT, PGUSER and PGDATABASE. node-postgres sends every parameter as text
// of unknown type. Prints one line per check and exits non-zero if any fails.
'use strict';
const { Client } = require('pg');

const mode = process.argv[2];
let failures = 0;
let statement = 0;

function check(name, got, want) {
  const ok = JSON.stringify(got) === JSON.stringify(want);
  if (!ok) failures++;
  console.log(`${ok ? 'ok' : 'not ok'} - ${name}${ok ? '' : `: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`}`);
}

async function main() {
  const client = new Client();
  await client.connect();
  const query = (text, values) =>
    client.query(mode === 'direct' ? { name: `q${statement++}`, text, values } : { text, values });
  const cases = [
    ['int', 'int_cfg', 1, 'build_int', 'int'],
    ['int given as a string', 'int_cfg', '1', 'build_int', 'int'],
    ['bigint given as a string', 'big_cfg', '1099511627776', 'build_big', 'bigint'],
    ['text', 'text_cfg', 'acme', 'build_text', 'text'],
    ['uuid', 'uuid_cfg', '00000000-0000-0000-0000-000000000001', 'build_uuid', 'uuid'],
  ];
  for (const [label, config, tenant, builder, type] of cases) {
    const get = { name: `get_${statement++}`, text: 'SELECT config_guard.get($1, $2) AS doc', values: [config, tenant] };
    let got;
    for (let i = 0; i < 3; i++) {  // a named statement is prepared once, then executed
      got = (await client.query(mode === 'direct' ? get : { text: get.text, values: get.values })).rows[0].doc;
    }
    const want = (await query(`SELECT ${builder}($1::text::${type}) AS doc`, [String(tenant)])).rows[0].doc;
    check(`get() with a ${label} tenant as a parameter`, got, want);
    const page = await query('SELECT item FROM config_guard.export_page($1, $2, $3, $4)', [config, tenant, null, 100]);
    check(`export_page() with a ${label} tenant`, page.rows.length, 2);
    await query('SELECT config_guard.invalidate($1, $2)', [config, tenant]);
    got = (await query('SELECT config_guard.get($1, $2) AS doc', [config, tenant])).rows[0].doc;
    check(`get() after invalidate() with a ${label} tenant`, got, want);
  }
  // a write, then a transaction rolled back (the script runs twice)
  await query("UPDATE items_int SET v = v || '?' WHERE tenant_id = $1", [1]);
  let got = (await query('SELECT config_guard.get($1, $2) AS doc', ['int_cfg', 1])).rows[0].doc;
  check('get() after a write', got, (await query('SELECT build_int(1) AS doc')).rows[0].doc);
  await client.query('BEGIN');
  await query('INSERT INTO items_int VALUES ($1, $2, $3)', [1, 4, 'd']);
  got = (await query('SELECT config_guard.get($1, $2) AS doc', ['int_cfg', 1])).rows[0].doc;
  check('get() inside the writing transaction', got, (await query('SELECT build_int(1) AS doc')).rows[0].doc);
  await client.query('ROLLBACK');
  try {
    await query('SELECT config_guard.get($1, $2)', ['no_such_config', 1]);
    check('an unknown config is an error', 'no error', '42704');
  } catch (e) {
    check('an unknown config is an error', e.code, '42704');
  }
  await client.end();
  console.log(`${failures} failed`);
  process.exit(failures ? 1 : 0);
}

main().catch((e) => {
  console.log(`not ok - ${e.message}`);
  process.exit(1);
});
