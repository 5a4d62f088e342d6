#!/usr/bin/env bash
# The project's one test command: installs the WebDAV clients the end-to-end tests
# drive (as root), builds the binary they start, and runs every test.
set -euo pipefail

cd "$(dirname "$0")/.."

# Debian packages of the external clients, and the command each one provides.
# nginx and Apache are the peers of the benchmark's smoke run.
packages=(litmus cadaver rclone davfs2 curl openssl nextcloud-desktop-cmd owncloud-client-cmd
          nginx-light libnginx-mod-http-dav-ext apache2)
tools=(litmus cadaver rclone mount.davfs curl openssl nextcloudcmd owncloudcmd nginx apache2)

have_tool() {
    # mount.davfs lives in /usr/sbin, which is not on every user's PATH.
    command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/sbin/$1" ]
}

missing=()
for tool in "${tools[@]}"; do
    have_tool "$tool" || missing+=("$tool")
done

if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing the WebDAV clients the tests need (missing: ${missing[*]})" >&2
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y "${packages[@]}"
    else
        echo "missing tools: ${missing[*]}" >&2
        echo "install them with: sudo apt-get install -y ${packages[*]}" >&2
        exit 1
    fi
fi

# The stock Yjs clients (yjs, y-websocket) that the co-editing tests drive, at the versions
# pinned by tests/collab/package-lock.json.
if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm
    else
        echo "missing tools: node npm" >&2
        echo "install them with: sudo apt-get install -y nodejs npm" >&2
        exit 1
    fi
fi
npm ci --prefix tests/collab --no-audit --no-fund

# The end-to-end tests start target/debug/ruche, which `cargo test` does not build
# for them: build every binary first so they never run a stale one.
cargo build --workspace --bins
cargo test --workspace --no-fail-fast

# The benchmark program, at tiny sizes and once, against the debug binary just built: it
# proves every workload and output still works. It asserts no time.
RUCHE_BIN="$PWD/target/debug/ruche" cargo run -p ruche-bench -- webdav --smoke \
    --out target/bench-smoke
RUCHE_BIN="$PWD/target/debug/ruche" cargo run -p ruche-bench -- sync --smoke \
    --out target/bench-smoke
