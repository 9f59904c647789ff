#!/usr/bin/env node
// Committed shim so npm links the `evpay` command at install time; the CLI itself is built into dist/.
'use strict';
try {
  require('../dist/cli/evpay.js').main(process.argv);
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND') {
    process.stderr.write(
      'evpay: not built yet; run `npm run build` (or `npm install-test`) at the repository root\n',
    );
    process.exitCode = 2;
  } else {
    throw e;
  }
}
