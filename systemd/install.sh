#!/usr/bin/env bash
# Install the greenwave agent as a systemd service (systemd/README.md).
#
#   sudo systemd/install.sh                      # from this source tree
#   sudo systemd/install.sh --wheel greenwave-0.1.0-py3-none-any.whl
#   systemd/install.sh --dry-run                 # print what it would do, change nothing
#   systemd/install.sh --root /tmp/r --python python3   # into a staging tree (tests)
#
# Idempotent: run it again to upgrade the code; an existing agent.toml, the
# state, the credentials and the user are kept. It never starts the agent:
# configure and provision first, then `systemctl start greenwave`.
#
# What it does (paths under --root when given):
#   group and system user greenwave (no login, no home), also in group dialout
#   $PREFIX/venv                 a virtualenv with greenwave (PREFIX=/opt/greenwave)
#   $PREFIX/share/systemd/       this README (the unit's Documentation=)
#   /etc/greenwave/              0750 root:greenwave
#   /etc/greenwave/agent.toml    from examples/agent.toml if absent, 0640 root:greenwave
#   /etc/greenwave/credentials/  0700 root:root, for LoadCredential= (MQTT password, TLS key)
#   /var/lib/greenwave/          0750 greenwave:greenwave (StateDirectory=)
#   /etc/systemd/system/greenwave.service, then daemon-reload and enable
#
# With --root, users, ownership and the running systemd are left alone (they
# are printed instead): the tree is for inspection, a test, or an image build
# that runs this script again inside the image.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SOURCE=$(dirname "$HERE")
ROOT=""
PREFIX=/opt/greenwave
WHEEL=""
PYTHON=python3
DRY_RUN=0
SKIP_VENV=0
ENABLE=1
USER_NAME=greenwave

usage() {
  sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<'EOF'
Options:
  --dry-run        print every step, change nothing
  --root DIR       install into DIR instead of / (no users, chown or systemctl)
  --prefix DIR     where the venv goes (default /opt/greenwave)
  --wheel FILE     install this wheel (default: build from the source tree)
  --source DIR     the source tree (default: the one holding this script)
  --python PY      the interpreter the venv is made from (default python3, >= 3.11)
  --skip-venv      leave the venv alone (it is managed another way)
  --no-enable      install the unit but do not enable it
  -h, --help       this text
EOF
}

die() { echo "install.sh: $*" >&2; exit 2; }

while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) DRY_RUN=1 ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; ROOT=${2%/}; shift ;;
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; PREFIX=${2%/}; shift ;;
    --wheel) [ $# -ge 2 ] || die "--wheel needs a file"; WHEEL=$2; shift ;;
    --source) [ $# -ge 2 ] || die "--source needs a directory"; SOURCE=${2%/}; shift ;;
    --python) [ $# -ge 2 ] || die "--python needs an interpreter"; PYTHON=$2; shift ;;
    --skip-venv) SKIP_VENV=1 ;;
    --no-enable) ENABLE=0 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
  esac
  shift
done

case "$PREFIX" in /*) ;; *) die "--prefix must be an absolute path" ;; esac
if [ -n "$ROOT" ]; then
  case "$ROOT" in /*) ;; *) ROOT="$(pwd)/$ROOT" ;; esac
fi
[ -n "$WHEEL" ] && [ ! -f "$WHEEL" ] && die "no such wheel: $WHEEL"
[ -f "$SOURCE/systemd/greenwave.service" ] || die "not a greenwave source tree: $SOURCE"
[ -f "$SOURCE/examples/agent.toml" ] || die "missing $SOURCE/examples/agent.toml"
if [ -z "$ROOT" ] && [ "$DRY_RUN" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
  die "run as root (or try --dry-run, or --root DIR)"
fi

say() { printf '%s\n' "$*"; }
# Run a command, or only print it with --dry-run.
run() {
  if [ "$DRY_RUN" -eq 1 ]; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}
# A step that needs the real system (users, ownership, systemd): skipped under --root.
system() {
  if [ -n "$ROOT" ]; then
    printf 'skip (--root): %s\n' "$*"
  else
    run "$@"
  fi
}

ETC=$ROOT/etc/greenwave
STATE=$ROOT/var/lib/greenwave
UNIT_DIR=$ROOT/etc/systemd/system
VENV=$ROOT$PREFIX/venv

# -- user and group -------------------------------------------------------------------
if [ -n "$ROOT" ]; then
  say "skip (--root): group and user $USER_NAME"
else
  getent group "$USER_NAME" >/dev/null || run groupadd --system "$USER_NAME"
  if ! getent passwd "$USER_NAME" >/dev/null; then
    run useradd --system --gid "$USER_NAME" --no-create-home --home-dir /var/lib/greenwave \
      --shell /usr/sbin/nologin --comment "greenwave traffic signal agent" "$USER_NAME"
  fi
  # Serial controllers (/dev/ttyUSB*, ttyS*, ttyAMA*, ttyACM*) belong to group dialout.
  if getent group dialout >/dev/null && ! id -nG "$USER_NAME" 2>/dev/null | grep -qw dialout; then
    run usermod --append --groups dialout "$USER_NAME"
  fi
fi

# -- the code -------------------------------------------------------------------------
if [ "$SKIP_VENV" -eq 1 ]; then
  say "skip (--skip-venv): $VENV"
else
  if [ ! -x "$VENV/bin/python" ]; then
    run "$PYTHON" -c 'import sys; assert sys.version_info >= (3, 11), "greenwave needs Python 3.11+"'
    run "$PYTHON" -m venv "$VENV"
  fi
  PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
  if [ -n "$WHEEL" ]; then
    run "${PIP[@]}" --upgrade "$WHEEL"
  else
    # Build from a copy, so the source tree gets no build/ directory.
    if [ "$DRY_RUN" -eq 1 ]; then
      BUILD=/tmp/greenwave-build.XXXXXX
    else
      BUILD=$(mktemp -d)
      trap 'rm -rf "$BUILD"' EXIT
    fi
    run tar -C "$SOURCE" --exclude=./.venv --exclude=./.git --exclude=./build \
      --exclude='*.egg-info' --exclude=__pycache__ -cf "$BUILD/src.tar" .
    run mkdir -p "$BUILD/src"
    run tar -C "$BUILD/src" -xf "$BUILD/src.tar"
    CONSTRAINTS=()
    [ -f "$SOURCE/constraints.txt" ] && CONSTRAINTS=(-c "$SOURCE/constraints.txt")
    run "${PIP[@]}" "${CONSTRAINTS[@]}" --upgrade "$BUILD/src"
  fi
fi
run install -d -m 0755 "$ROOT$PREFIX/share/systemd"
run install -m 0644 "$SOURCE/systemd/README.md" "$ROOT$PREFIX/share/systemd/README.md"

# -- configuration, credentials, state ---------------------------------------------------
run install -d -m 0750 "$ETC"
system chown root:"$USER_NAME" "$ETC"
if [ -e "$ETC/agent.toml" ]; then
  say "keep: $ETC/agent.toml (exists)"
else
  run install -m 0640 "$SOURCE/examples/agent.toml" "$ETC/agent.toml"
  system chown root:"$USER_NAME" "$ETC/agent.toml"
fi
# Read by systemd (as root) for LoadCredential=, never by the agent directly.
run install -d -m 0700 "$ETC/credentials"
run install -d -m 0750 "$STATE"
system chown "$USER_NAME:$USER_NAME" "$STATE"

# -- the unit -------------------------------------------------------------------------
run install -d -m 0755 "$UNIT_DIR"
if [ "$PREFIX" = /opt/greenwave ]; then
  run install -m 0644 "$SOURCE/systemd/greenwave.service" "$UNIT_DIR/greenwave.service"
elif [ "$DRY_RUN" -eq 1 ]; then
  say "+ sed 's|/opt/greenwave|$PREFIX|g' greenwave.service > $UNIT_DIR/greenwave.service"
else
  sed "s|/opt/greenwave|$PREFIX|g" "$SOURCE/systemd/greenwave.service" >"$UNIT_DIR/greenwave.service"
  chmod 0644 "$UNIT_DIR/greenwave.service"
fi

if [ -n "$ROOT" ]; then
  say "skip (--root): systemctl daemon-reload"
  [ "$ENABLE" -eq 1 ] && run systemctl --root="$ROOT" --quiet enable greenwave.service
elif [ -d /run/systemd/system ]; then
  run systemctl daemon-reload
  [ "$ENABLE" -eq 1 ] && run systemctl enable greenwave.service
else
  say "note: systemd is not running here: daemon-reload skipped"
  [ "$ENABLE" -eq 1 ] && run systemctl --quiet enable greenwave.service
fi

cat <<EOF
greenwave installed$([ "$DRY_RUN" -eq 1 ] && echo " (dry run: nothing changed)")$([ -n "$ROOT" ] && echo " under $ROOT").
Next:
  1. edit /etc/greenwave/agent.toml (device id, controller url, broker), then
     $PREFIX/venv/bin/greenwave config check --config /etc/greenwave/agent.toml
  2. secrets: /etc/greenwave/credentials/mqtt-password and device.key (0600 root),
     and the drop-in that points the agent at them (systemd/README.md, "Secrets")
  3. trust central's keys: $PREFIX/venv/bin/greenwave keys add --config /etc/greenwave/agent.toml \
       --kid KID --issuer ISS --role root|command FILE   (see --help)
  4. systemctl start greenwave; journalctl -u greenwave -f
EOF
