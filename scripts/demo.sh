#!/usr/bin/env bash
# The main job, from a fresh clone: a column rename as a multi-phase Prefect flow that
# stops at its first approval.
#
#   bash scripts/demo.sh         set up .venv; start a local Prefect server (SQLite) and
#                                `lockplane serve` in the background (reused when already
#                                running); create a demo SQLite database; plan the rename;
#                                start the flow run; print where to approve it; exit.
#   bash scripts/demo.sh stop    stop the background server and serve processes.
#
# Everything lives in .lockplane-demo/ (PREFECT_HOME, logs, database, plan).
# LOCKPLANE_DEMO_PORT picks the server's port (default 4200, or a free one if taken).
# The engine-only demo (plan and apply, no server) is still `lockplane demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
DEMO=$ROOT/.lockplane-demo
mkdir -p "$DEMO"

alive() {  # alive PIDFILE: the process group recorded there still runs
  [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

stop_one() {  # stop_one NAME: stop the process group recorded in NAME.pid
  local pidfile=$DEMO/$1.pid
  if alive "$pidfile"; then
    local pid
    pid=$(cat "$pidfile")
    kill -TERM -- "-$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.2
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    echo "stopped $1 (process group $pid)"
  fi
  rm -f "$pidfile"
}

if [ "${1:-}" = "stop" ]; then
  stop_one serve
  stop_one server
  exit 0
fi

bash scripts/setup.sh --no-browser
PY=$ROOT/.venv/bin/python

export PREFECT_HOME=$DEMO/prefect
export PREFECT_SERVER_ANALYTICS_ENABLED=false
export PREFECT_RUNNER_POLL_FREQUENCY=2  # serve picks up a resumed run within ~2 s
mkdir -p "$PREFECT_HOME"

healthy() {  # healthy PORT
  curl -fsS -m 2 "http://127.0.0.1:$1/api/health" >/dev/null 2>&1
}

PORT=$(cat "$DEMO/port" 2>/dev/null || echo "${LOCKPLANE_DEMO_PORT:-4200}")
if alive "$DEMO/server.pid" && healthy "$PORT"; then
  echo "Reusing the Prefect server at http://127.0.0.1:$PORT (process $(cat "$DEMO/server.pid"))"
  restarted_server=no
else
  stop_one server
  PORT=${LOCKPLANE_DEMO_PORT:-4200}
  # SO_REUSEADDR as the server sets it: a port in TIME_WAIT after a stop is free.
  if ! "$PY" -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "$PORT" 2>/dev/null; then
    PORT=$("$PY" -c "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    echo "Port ${LOCKPLANE_DEMO_PORT:-4200} is taken: using $PORT"
  fi
  echo "$PORT" > "$DEMO/port"
  # The UI asks the API at PREFECT_UI_API_URL; unset, it would say port 4200 whatever
  # port the server got, and every page would fail to fetch.
  export PREFECT_API_URL=http://127.0.0.1:$PORT/api PREFECT_UI_API_URL=http://127.0.0.1:$PORT/api
  echo "Starting a Prefect server on http://127.0.0.1:$PORT (SQLite under $PREFECT_HOME; log: $DEMO/server.log)"
  # setsid: its own process group, so `stop` ends it with its children; no terminal ties.
  setsid "$ROOT/.venv/bin/prefect" server start --host 127.0.0.1 --port "$PORT" \
    --analytics-off </dev/null >"$DEMO/server.log" 2>&1 &
  echo $! > "$DEMO/server.pid"
  for i in $(seq 1 240); do
    healthy "$PORT" && break
    if ! alive "$DEMO/server.pid"; then
      echo "the Prefect server exited; last lines of $DEMO/server.log:" >&2
      tail -20 "$DEMO/server.log" >&2
      exit 1
    fi
    [ "$i" = 240 ] && { echo "the Prefect server is not healthy after 120 s (see $DEMO/server.log)" >&2; exit 1; }
    sleep 0.5
  done
  restarted_server=yes
fi
export PREFECT_API_URL=http://127.0.0.1:$PORT/api PREFECT_UI_API_URL=http://127.0.0.1:$PORT/api
export PREFECT_UI_URL=http://127.0.0.1:$PORT

if [ "$restarted_server" = yes ] || ! alive "$DEMO/serve.pid"; then
  stop_one serve
  echo "Serving the deployments: lockplane serve (log: $DEMO/serve.log)"
  setsid "$ROOT/.venv/bin/lockplane" serve --target lockplane-demo \
    </dev/null >"$DEMO/serve.log" 2>&1 &
  echo $! > "$DEMO/serve.pid"
else
  echo "Reusing lockplane serve (process $(cat "$DEMO/serve.pid"))"
fi

"$PY" -m deployments.demo --dir "$DEMO"

cat <<EOF
The 'lockplane' command is in .venv/bin: put it on your PATH with

    source .venv/bin/activate

(or call .venv/bin/lockplane). The Prefect server and 'lockplane serve' keep running in the background
(logs: $DEMO/server.log, $DEMO/serve.log). Run this script again for a fresh demo
database and flow run; stop them with:

    bash scripts/demo.sh stop
EOF
