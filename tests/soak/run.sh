#!/bin/sh
# make check's chaos soak: tests/soak/soak.mjs for 60 seconds under TAP
# (about 75 s in all). It needs PXL_SERVE, PXL_PLUGIN_PATH and NODE_PATH
# (with `npm ci` done in tests/integration) as make check sets them, and
# redis-server (a failure without it). PXL_SOAK_SECONDS changes the length;
# arguments are passed on (see soak.mjs --help).
dir=${PXL_SRCDIR:+$PXL_SRCDIR/tests/soak}
dir=${dir:-$(dirname "$0")}
exec node "$dir/soak.mjs" --tap --seconds "${PXL_SOAK_SECONDS:-60}" "$@"
