#!/usr/bin/env bash
# Build, once, a free-threaded CPython 3.13 (3.13t) and print its path.
#
#   tools/free-threaded-python.sh          # --disable-gil
#   tools/free-threaded-python.sh tsan     # --disable-gil --with-thread-sanitizer
#
# No registry serves a prebuilt free-threaded interpreter and pyenv cannot
# download one, so the upstream CPython source comes from Debian's source
# package of python3.13 (its .orig tarball is CPython's own release).  The
# mirror is the one this machine's apt already uses; nothing else is
# contacted.  The build is cached under $STREAMFUTURES_CACHE (default
# ~/.cache/streamfutures): a second run prints the path at once.
set -euo pipefail

variant=${1:-ft}
case $variant in
    ft) configure_extra=() ;;
    tsan) configure_extra=(--with-thread-sanitizer) ;;
    *) echo "usage: $0 [ft|tsan]" >&2; exit 2 ;;
esac

cache=${STREAMFUTURES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/streamfutures}
prefix=$cache/python3.13t-$variant
python=$prefix/bin/python3.13t

# CPython's own suppressions for the reports its TSan CI knows to be
# inside CPython (make tsan-ft reads them from here)
keep_suppressions() {
    if [ "$variant" = tsan ] && [ ! -f "$prefix/tsan-suppressions.txt" ]; then
        tar -xJOf "$(ls "$cache"/src/python3.13_*.orig.tar.xz | tail -1)" --wildcards \
            '*/Tools/tsan/suppressions_free_threading.txt' > "$prefix/tsan-suppressions.txt"
    fi
}

if [ -x "$python" ] && "$python" -c 'import sys; assert not sys._is_gil_enabled()' 2>/dev/null; then
    "$python" -c 'import pip' 2>/dev/null || "$python" -m ensurepip >&2
    keep_suppressions
    echo "$python"
    exit 0
fi

src=$cache/src
mkdir -p "$src/lists/partial" "$src/apt-cache/archives/partial"
if ! ls "$src"/python3.13_*.orig.tar.xz >/dev/null 2>&1; then
    # the mirror this machine's apt uses, for trixie's sources
    uri=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null ||
          awk '/^deb / { print $2; exit }' /etc/apt/sources.list)
    printf 'deb-src %s trixie main\n' "$uri" > "$src/sources.list"
    apt=(apt-get -q -o Dir::Etc::SourceList="$src/sources.list" -o Dir::Etc::SourceParts=/dev/null
         -o Dir::State::Lists="$src/lists" -o Dir::Cache="$src/apt-cache")
    "${apt[@]}" update >&2
    (cd "$src" && "${apt[@]}" source --download-only python3.13 >&2)
fi

tarball=$(ls "$src"/python3.13_*.orig.tar.xz | tail -1)
build=$src/build-$variant
rm -rf "$build"
mkdir -p "$build"
tar -xJf "$tarball" -C "$build" --strip-components=1
(
    cd "$build"
    ./configure -q --disable-gil "${configure_extra[@]}" --prefix="$prefix" --without-ensurepip >&2
    make -s -j"$(nproc)" >&2
    make -s install >&2
)
"$python" -m ensurepip >&2
keep_suppressions
rm -rf "$build"
"$python" -c 'import sys; assert not sys._is_gil_enabled(), "the GIL is on"'
echo "$python"
