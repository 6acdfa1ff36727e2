#!/usr/bin/env bash
# Set up df-agent on a fresh Debian/Ubuntu machine with Python 3.11: system libraries, a virtualenv in
# .venv (override with VENV=...), the CPU build of torch 2.13.0, and the package with its extras.
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

# MuJoCo renders offscreen through EGL (Mesa's software rasteriser when there is no GPU); the ROS 2 tests
# need `ip` and `unshare` to keep DDS traffic inside a private network namespace.
need_apt=()
for lib in libEGL.so.1 libGL.so.1 libEGL_mesa.so.0; do
  ldconfig -p 2>/dev/null | grep -q "$lib" || need_apt=(libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libgles2)
done
command -v ip >/dev/null || need_apt+=(iproute2)
command -v unshare >/dev/null || need_apt+=(util-linux)
command -v make >/dev/null || need_apt+=(make)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" python3-venv
fi

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# Pin the CPU build first: an unpinned torch would pull a multi-GB CUDA build.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
extras="dev,forecast,video,teleop,maze2d-data"
[ "$(uname -m)" = "x86_64" ] && extras="$extras,ros2"
"$VENV/bin/python" -m pip install -q -e ".[$extras]"
echo "df-agent is installed in $VENV (activate with: source $VENV/bin/activate)"
