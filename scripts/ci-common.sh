# Sourced by scripts/ci-*.sh: strict mode, repo root as cwd, quiet idempotent apt installs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive
JOBS="${SDNODE_CI_JOBS:-$(nproc)}"

# apt_ensure PKG...: installs the Debian packages that are missing; a no-op when all are present.
apt_ensure() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "ci: apt-get install ${missing[*]}"
  $sudo apt-get update -qq >/dev/null
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# cmake_build DIR ARGS...: configures and builds sdcore_tests in DIR; prints the log only on failure.
cmake_build() {
  local dir="$1"; shift
  mkdir -p "$dir"
  if ! { cmake -S . -B "$dir" -DSDNODE_TESTS=ON "$@" && cmake --build "$dir" -j "$JOBS" --target sdcore_tests; } \
      >"$dir/ci-build.log" 2>&1; then
    tail -n 60 "$dir/ci-build.log"
    return 1
  fi
}
