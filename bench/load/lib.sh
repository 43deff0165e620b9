# bench/load/lib.sh — shell helpers shared by the load scripts (sourced, not run).
# Expects `log` to be defined by the caller.

# apt-get is used only when a tool is missing (wrk, nginx).
ensure_tool() {
    local tool=$1 package=$2 sudo=""
    command -v "$tool" >/dev/null 2>&1 && return 0
    [[ $(id -u) -ne 0 ]] && sudo=sudo
    log "installing $package (apt-get)"
    $sudo apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$package"
    command -v "$tool" >/dev/null 2>&1
}

# A port that was free a moment ago on 127.0.0.1 (the kernel picks it; tiny reuse race).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}
