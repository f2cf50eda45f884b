#!/bin/sh
# deps.sh [build|test|bench|fuzz]...: installs the Debian packages parley needs
# for the given purposes when they are missing. As root it runs apt-get; with
# password-less sudo it uses sudo; otherwise it prints the exact command and
# fails, so nothing is left half-done silently.
set -eu

# lua-check: luacheck's Lua parser, which `parley check` runs for its static
# checks (docs/authoring.md), so it is needed at run time, not only to build.
build="gcc make pkg-config liblua5.4-dev lua-check libevent-dev libjansson-dev libsqlite3-dev libpq-dev libutf8proc-dev libssl-dev libcurl4-openssl-dev libjemalloc-dev libgmime-3.0-dev libxml2-dev libicu-dev"
# openssl: the WeChat suite encrypts as WeChat does with its command when
# Python has no cryptography package.
# chromium, nodejs, npm and the fonts: the browser tests (tests/browser/), which
# draw Latin, Arabic, Hebrew, Japanese and emoji; their npm packages come from
# tests/browser/package-lock.json (`make test` runs npm ci there).
# python3-prometheus-client: its text-format parser reads /metrics
# (tests/e2e/test_metrics.py).
# nginx-light, caddy, logrotate, systemd (systemd-analyze): deploy/'s files,
# run or checked by tests/e2e/test_proxy.py, test_deploy.py, test_log_file.py.
test="lua-busted lua5.4 python3 python3-prometheus-client openssl postgresql chromium nodejs npm fonts-noto-core fonts-noto-cjk fonts-noto-color-emoji nginx-light caddy logrotate systemd"
bench="wrk python3 postgresql haproxy"
# clang and its runtime libraries: libclang_rt.fuzzer-x86_64.a (libFuzzer)
# and the sanitizers' are in libclang-rt-<version>-dev, which this package
# names for Debian's default clang.
fuzz="clang libclang-rt-dev"

want=""
for purpose in "${@:-build}"; do
  case "$purpose" in
    build) want="$want $build" ;;
    test) want="$want $build $test" ;;
    bench) want="$want $build $bench" ;;
    fuzz) want="$want $build $fuzz" ;;
    *) echo "deps.sh: unknown purpose '$purpose' (build, test, bench or fuzz)" >&2; exit 2 ;;
  esac
done

missing=""
for pkg in $want; do
  case " $missing " in *" $pkg "*) continue ;; esac
  # node and npm may come from elsewhere (NodeSource's nodejs bundles npm and
  # conflicts with Debian's): the command is what counts.
  case "$pkg" in
    nodejs) command -v node >/dev/null 2>&1 && continue ;;
    npm) command -v npm >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

echo "parley needs these Debian packages:$missing"
if [ "$(id -u)" = 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  SUDO="sudo"
else
  echo "Install them with:" >&2
  echo "  sudo apt-get install -y$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y --no-install-recommends $missing || {
  $SUDO apt-get update && $SUDO apt-get install -y --no-install-recommends $missing
}
