#!/usr/bin/env node
// Committed shim so npm links the `evpay-gateway` command at install time; the CLI itself is built into dist/.
'use strict';
try {
  require('../dist/cli/gatewayCli.js').main(process.argv);
} catch (e) {
  if (e && e.code === 'MODULE_NOT_FOUND') {
    process.stderr.write(
      'evpay-gateway: not built yet; run `npm run build` (or `npm install-test`) at the repository root\n',
    );
    process.exitCode = 2;
  } else {
    throw e;
  }
}
