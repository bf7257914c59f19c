#!/usr/bin/env bash
# Spread a NIC's receive/transmit queues over the cores that run sse-kafka workers, one queue
# per core, so that a connection's packets, its softirq work and its worker stay on one core.
#
#   tuning/pin-irqs.sh IFACE [CORES]          print the plan (CORES default: all, e.g. 0-15 or 2,3,4)
#   tuning/pin-irqs.sh IFACE [CORES] --apply  apply it (root): stops irqbalance, sets IRQ
#                                             affinity, RPS and XPS
#
# sse-kafka pins worker i to core i (mod the cores it may use), so run it with
# --workers = number of CORES and, with systemd, CPUAffinity=CORES (tuning/sse-kafka.service).
# With fewer NIC queues than cores, RPS spreads receive processing of each queue over the
# cores; with at least as many queues, RPS stays off (hardware steering is cheaper).
set -euo pipefail

IFACE=${1:?usage: $0 IFACE [CORES] [--apply]}
CORES_SPEC=${2:-0-$(( $(nproc) - 1 ))}
APPLY=${3:-}
if [ "$CORES_SPEC" = "--apply" ]; then CORES_SPEC=0-$(( $(nproc) - 1 )); APPLY=--apply; fi

[ -d "/sys/class/net/$IFACE" ] || { echo "no interface $IFACE" >&2; exit 1; }

# Expand "0-3,8,10-11" into a list.
CORES=()
IFS=',' read -ra parts <<< "$CORES_SPEC"
for p in "${parts[@]}"; do
    if [[ $p == *-* ]]; then for ((c=${p%-*}; c<=${p#*-}; c++)); do CORES+=("$c"); done
    else CORES+=("$p"); fi
done
N=${#CORES[@]}

# A hex CPU mask for /proc/irq/*/smp_affinity and rps_cpus/xps_cpus (comma-separated 32-bit words).
mask_of() {
    local -a words=()
    local c
    for c in "$@"; do
        local w=$(( c / 32 ))
        while [ ${#words[@]} -le $w ]; do words+=(0); done
        words[$w]=$(( words[$w] | (1 << (c % 32)) ))
    done
    local out="" i
    for (( i=${#words[@]}-1; i>=0; i-- )); do
        out+=$(printf '%08x' "${words[$i]}")
        [ $i -gt 0 ] && out+=","
    done
    echo "$out"
}

run() { if [ "$APPLY" = "--apply" ]; then eval "$1"; else echo "  $1"; fi; }

[ "$APPLY" = "--apply" ] && [ "$(id -u)" != 0 ] && { echo "--apply needs root" >&2; exit 1; }

echo "# $IFACE over cores ${CORES[*]}"
if command -v ethtool >/dev/null 2>&1; then
    echo "# queues (ethtool -l $IFACE):"; ethtool -l "$IFACE" 2>/dev/null | sed 's/^/#   /' || true
    echo "# to match the workers: ethtool -L $IFACE combined $N"
fi

if [ "$APPLY" = "--apply" ] && systemctl is-active --quiet irqbalance 2>/dev/null; then
    systemctl stop irqbalance
    echo "==> irqbalance stopped (systemctl disable irqbalance to keep it off)"
fi

# IRQs of the interface's queues, in /proc/interrupts order.
mapfile -t IRQS < <(awk -v ifc="$IFACE" '$NF ~ ifc {sub(":","",$1); print $1}' /proc/interrupts)
if [ ${#IRQS[@]} -eq 0 ]; then
    echo "# no IRQs named after $IFACE in /proc/interrupts (virtio/veth/loopback?): only RPS/XPS below"
fi
i=0
for irq in "${IRQS[@]}"; do
    core=${CORES[$(( i % N ))]}
    run "echo $(mask_of "$core") > /proc/irq/$irq/smp_affinity"
    i=$(( i + 1 ))
done

RXQ=(/sys/class/net/$IFACE/queues/rx-*)
TXQ=(/sys/class/net/$IFACE/queues/tx-*)
ALL=$(mask_of "${CORES[@]}")
if [ ${#RXQ[@]} -lt "$N" ]; then
    # Fewer queues than cores: let RPS spread each queue's packets over the worker cores.
    for q in "${RXQ[@]}"; do run "echo $ALL > $q/rps_cpus"; done
    run "echo $(( N * 4096 )) > /proc/sys/net/core/rps_sock_flow_entries"
    for q in "${RXQ[@]}"; do run "echo 4096 > $q/rps_flow_cnt"; done
else
    for q in "${RXQ[@]}"; do run "echo 0 > $q/rps_cpus"; done
fi
# XPS: transmit queue j used by core j.
j=0
for q in "${TXQ[@]}"; do
    [ -w "$q/xps_cpus" ] || [ "$APPLY" != "--apply" ] || continue
    run "echo $(mask_of "${CORES[$(( j % N ))]}") > $q/xps_cpus"
    j=$(( j + 1 ))
done
