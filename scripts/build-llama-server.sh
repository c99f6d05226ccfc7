#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` once per machine from the llama.cpp sources that the pinned
# llama-cpp-python sdist carries (PyPI is the only registry these machines reach), and caches it.
# Prints the binary's path. Idempotent: a cached binary that answers --version is reused.
#
# GGML_NATIVE=OFF with explicit AVX2/FMA/F16C: a -march=native build has segfaulted on some of
# these CPUs; the baseline x86-64-v3 set runs on every kind we are given. No curl, no OpenSSL, no
# web UI (the prebuilt UI would be fetched from a hub).
set -euo pipefail
VERSION="${LLAMA_CPP_PYTHON_VERSION:-0.3.36}"
CACHE="${TTS_VIZ_CACHE:-$HOME/.cache/tts-viz}/llama-server/$VERSION"
BIN="$CACHE/bin/llama-server"
PY="${PYTHON:-python3}"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$CACHE"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/llama-server-build.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
start=$(date +%s)
echo "building llama-server (llama-cpp-python $VERSION sources), once per machine; takes minutes" >&2
"$PY" -m pip download -q --no-binary :all: --no-deps -d "$WORK" "llama-cpp-python==$VERSION" >&2
tar -xzf "$WORK"/llama_cpp_python-"$VERSION".tar.gz -C "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
GEN=$(command -v ninja >/dev/null && echo Ninja || echo "Unix Makefiles")
cmake -S "$SRC" -B "$WORK/build" -G "$GEN" -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
  -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON \
  -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF \
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON \
  >"$WORK/cmake.log" 2>&1 || { tail -30 "$WORK/cmake.log" >&2; exit 1; }
cmake --build "$WORK/build" --target llama-server -j "$(nproc)" >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log" >&2; exit 1; }
mkdir -p "$CACHE/bin"
cp "$WORK/build/bin/llama-server" "$BIN.tmp" && mv "$BIN.tmp" "$BIN"
"$BIN" --version >&2
echo "llama-server built in $(( $(date +%s) - start )) s" >&2
echo "$BIN"
