#!/bin/sh
# docker-build.sh PREFIX - the Dockerfile's build step: build mlopsd and
# install binary, config, SQL and sample data under PREFIX.  `make test`
# runs it too (tests/integration/test_docker.sh) so the image recipe is
# exercised without a Docker engine.
set -eu
prefix=${1:?usage: scripts/docker-build.sh PREFIX}
make -j"$(nproc 2>/dev/null || echo 2)" BUILD="${BUILD:-build}" >/dev/null
make install BUILD="${BUILD:-build}" PREFIX="$prefix" >/dev/null
install -m 0755 scripts/docker-entrypoint.sh "$prefix/bin/docker-entrypoint.sh"
echo "docker-build.sh: installed into $prefix"
