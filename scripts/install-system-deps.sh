#!/usr/bin/env bash
# Debian packages Open3D needs on a machine without a GPU (see README "What set-up does"):
# libusb for `import open3d`, Mesa's Vulkan software driver for rendering, Xvfb for GUI tests.
set -euo pipefail
packages=(libusb-1.0-0 libgl1 libegl1 libgl1-mesa-dri libvulkan1 mesa-vulkan-drivers xvfb xauth)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "note: not a Debian/Ubuntu system; install the equivalents of: ${missing[*]}" >&2
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "note: missing system packages (run as root to install): sudo apt-get install ${missing[*]}" >&2
  exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
