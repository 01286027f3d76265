#!/bin/sh
# scan-build, cppcheck and the unit tests under Valgrind, on a separate
# debug build of the tree under test: scripts/static-check (TAP).
exec "${PXL_SRCDIR:?}/scripts/static-check"
