#!/usr/bin/env bash
# Local demo: Prometheus and `reconfig watch` on a kubelet-style volume, no cluster.
# Needs Debian's prometheus package (apt-get install prometheus), curl, and a built reconfig.
set -euo pipefail
cd "$(dirname "$0")"
reconfig=${RECONFIG:-../../target/release/reconfig}
[[ -x $reconfig ]] || { echo "build first: cargo build --release" >&2; exit 2; }
command -v prometheus >/dev/null || { echo "needs prometheus (apt-get install prometheus)" >&2; exit 2; }
command -v curl >/dev/null || { echo "needs curl (apt-get install curl)" >&2; exit 2; }

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$work"' EXIT

# kubelet's AtomicWriter: timestamped folder, ..data_tmp renamed over ..data, old folder removed.
update() {
  local dir="$work/raw" ts old
  ts="..$(date -u +%Y_%m_%d_%H_%M_%S).$RANDOM"
  mkdir -p "$dir/$ts"
  printf '%s\n' "$1" > "$dir/$ts/prometheus.yml"
  old=$(readlink "$dir/..data" 2>/dev/null || true)
  ln -s "$ts" "$dir/..data_tmp"
  mv -T "$dir/..data_tmp" "$dir/..data"
  [[ -L $dir/prometheus.yml ]] || ln -s ..data/prometheus.yml "$dir/prometheus.yml"
  [[ -z $old ]] || rm -rf "${dir:?}/$old"
}

good() { printf 'global:\n  scrape_interval: %s\nscrape_configs:\n  - job_name: prometheus\n    static_configs:\n      - targets: ["localhost:19090"]' "$1"; }

update "$(good 30s)"
"$reconfig" watch --dir "$work/raw" --publish "$work/live" --listen 127.0.0.1:19533 \
  --validate-cmd "promtool check config {dir}/prometheus.yml" \
  --webhook http://127.0.0.1:19090/-/reload &
until curl -sf http://127.0.0.1:19533/readyz >/dev/null; do sleep 0.2; done
prometheus --config.file="$work/live/prometheus.yml" --storage.tsdb.path="$work/data" \
  --web.listen-address=127.0.0.1:19090 --web.enable-lifecycle --log.level=warn &
until curl -sf http://127.0.0.1:19090/-/ready >/dev/null; do sleep 0.2; done

interval() { curl -s http://127.0.0.1:19090/api/v1/status/config | grep -o 'scrape_interval: [0-9a-z]*' | head -1; }
echo "== start:               $(interval)"
update "$(good 15s)"; sleep 1
echo "== after a good change: $(interval)"
update "$(good 5s)
  - job_name: broken
    scrape_interval: soon"; sleep 1
echo "== after a bad change:  $(interval)"
echo "   reconfig /status:    $(curl -s http://127.0.0.1:19533/status | head -c 300)"
echo "   reconfig /readyz:    $(curl -s http://127.0.0.1:19533/readyz | head -c 200)"
echo "   prometheus_config_last_reload_successful: $(curl -s http://127.0.0.1:19090/metrics | grep '^prometheus_config_last_reload_successful' | cut -d' ' -f2)"
update "$(good 10s)"; sleep 1
echo "== after the fix:       $(interval)"
