#!/usr/bin/env bash
# Builds the Debian package of hookd in one command: a release build configured for prefix /usr
# in build-pkg/ (HOOKD_PKG_BUILD_DIR), then CPack's DEB generator on the install rules of
# packaging/CMakeLists.txt. Prints the path of the .deb (build-pkg/hookd_<version>_<arch>.deb).
# Needs what scripts/setup.sh --runtime installs (node_modules/swagger-ui-dist, preact, htm and uplot
# included) and
# dpkg-dev (dpkg-shlibdeps computes Depends:).
#   scripts/package.sh             build the package
#   dpkg -c build-pkg/hookd_*.deb  what it holds; docs/INSTALL.md for the rest
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${HOOKD_PKG_BUILD_DIR:-build-pkg}
for p in swagger-ui-dist preact htm uplot; do # installed beside hookd (packaging/CMakeLists.txt)
    [ -d "node_modules/$p" ] || scripts/setup.sh --runtime
done
cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr >/dev/null
cmake --build "$dir" -j"$(nproc)" --target hookd >/dev/null
rm -f "$dir"/hookd_*.deb
(cd "$dir" && cpack -G DEB >/dev/null 2>&1) || (cd "$dir" && cpack -G DEB)
ls "$PWD/$dir"/hookd_*.deb
