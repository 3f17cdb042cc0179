#!/usr/bin/env bash
# Finds or starts a Meilisearch for `make run`, with its data in ./.data/meili: one already
# answering at MEILI_URL (default http://127.0.0.1:7700), else a `meilisearch` binary on PATH,
# else Docker (the image docker-compose.yml pins). Otherwise it prints one line saying how to
# run one: the service starts anyway and its search sink waits, retrying, until one answers.
# Never fails `make run`. Usage: scripts/local-meilisearch.sh start|stop
set -uo pipefail
URL="${MEILI_URL:-http://127.0.0.1:7700}"
DIR="$(pwd)/.data/meili"
IMAGE="$(sed -n 's/^ *image: *\(getmeili\/meilisearch:[^ ]*\).*/\1/p' docker-compose.yml 2>/dev/null | head -1)"
IMAGE="${IMAGE:-getmeili/meilisearch:v1.26}"
CONTAINER=appwrite-sync-meilisearch
hostport="${URL#*://}"; hostport="${hostport%%/*}"
port="${hostport##*:}"; [ "$port" = "$hostport" ] && port=7700
healthy() { curl -fsS -m 2 "$URL/health" >/dev/null 2>&1; }
docker_ok() { command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1; }
key_args=(); [ -n "${MEILI_MASTER_KEY:-}" ] && key_args=(--master-key "$MEILI_MASTER_KEY")

case "${1:-start}" in
  start)
    if healthy; then
      echo "meilisearch: using the one answering at $URL"
    elif command -v meilisearch >/dev/null 2>&1; then
      mkdir -p "$DIR"
      nohup meilisearch --db-path "$DIR/data.ms" --dump-dir "$DIR/dumps" --http-addr "127.0.0.1:$port" \
        --no-analytics "${key_args[@]}" >"$DIR/log" 2>&1 &
      echo $! >"$DIR/pid"
      echo "meilisearch: started $(command -v meilisearch) on 127.0.0.1:$port, data in $DIR (log: $DIR/log; stop it with: scripts/local-meilisearch.sh stop)"
    elif docker_ok; then
      mkdir -p "$DIR"
      docker rm -f "$CONTAINER" >/dev/null 2>&1
      env_args=(-e MEILI_NO_ANALYTICS=true); [ -n "${MEILI_MASTER_KEY:-}" ] && env_args+=(-e "MEILI_MASTER_KEY=$MEILI_MASTER_KEY")
      if docker run -d --name "$CONTAINER" -p "127.0.0.1:$port:7700" -v "$DIR:/meili_data" "${env_args[@]}" "$IMAGE" >/dev/null; then
        echo "meilisearch: started $IMAGE in Docker ($CONTAINER) on 127.0.0.1:$port, data in $DIR (stop it with: scripts/local-meilisearch.sh stop)"
      else
        echo "meilisearch: docker run $IMAGE failed: the search sink waits, retrying, until one answers at $URL"
      fi
    else
      echo "meilisearch: none at $URL, no meilisearch on PATH, no Docker: the search sink waits, retrying, until one answers there (install one: https://www.meilisearch.com/docs/learn/self_hosted/install_meilisearch_locally, then run it with: meilisearch --db-path .data/meili/data.ms; or: docker run -p 127.0.0.1:$port:7700 $IMAGE)"
    fi
    ;;
  stop)
    if [ -f "$DIR/pid" ]; then kill "$(cat "$DIR/pid")" 2>/dev/null; rm -f "$DIR/pid"; fi
    if command -v docker >/dev/null 2>&1; then docker rm -f "$CONTAINER" >/dev/null 2>&1; fi
    true
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
