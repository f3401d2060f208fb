#!/bin/bash
# fuzz_config.sh: `make check` replays the jacod.conf parser's corpus (seeds
# and every past crash) through the fuzz target, without a fuzzer.
set -euo pipefail
top_builddir=${top_builddir:-$(cd "$(dirname "$0")/../../build" && pwd)}
top_srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
exec "$top_builddir/test/fuzz/replay_config" "$top_srcdir/test/fuzz/corpus/config"
