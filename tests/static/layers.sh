#!/bin/sh
# framework/ files look down only: scripts/check-layers over the sources
# and over the objects of the build under test (TAP).
exec "${PXL_SRCDIR:?}/scripts/check-layers" "${PXL_BUILDDIR:?}"
