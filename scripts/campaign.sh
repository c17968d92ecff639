#!/usr/bin/env bash
# A fault campaign of any length, with a seed to replay: Inkwire across network namespaces
# (scripts/netcluster.sh) under `inkwire stress` and a seeded schedule of partitions, loss, slow
# links, pauses and kills, then the checker (cli/tests/fault_campaign.rs). Needs root.
#
#   scripts/campaign.sh                 # a random seed, 10 minutes
#   scripts/campaign.sh 1234 300        # seed 1234, 5 minutes: the same schedule again
#
# The seed and the schedule are printed; the services' logs, the stress report and schedule.json
# are kept in $CAMPAIGN_DIR (default /tmp/inkwire-campaign).
set -euo pipefail
cd "$(dirname "$0")/.."
seed=${1:-$(( (RANDOM << 15) | RANDOM ))}
seconds=${2:-600}
echo "campaign: seed $seed, $seconds s (replay: scripts/campaign.sh $seed $seconds)" >&2
eval "$(scripts/test-deps.sh start)"
trap 'scripts/test-deps.sh stop' EXIT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/inkwire-target}
rm -rf "${CAMPAIGN_DIR:=/tmp/inkwire-campaign}"
INKWIRE_CAMPAIGN_DIR=$CAMPAIGN_DIR INKWIRE_CAMPAIGN_SEED=$seed INKWIRE_CAMPAIGN_SECONDS=$seconds \
  cargo nextest run --locked --profile campaign -p inkwire --test fault_campaign --no-capture
