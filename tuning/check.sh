#!/usr/bin/env bash
# Read-only: prints the settings tuning/README.md talks about, as they are on this host, next
# to what tuning/sysctl.sh would set for STREAMS streams.
#
#   tuning/check.sh [STREAMS] [PID]     PID: a running sse-kafka, to show its own fd limit
set -uo pipefail

STREAMS=${1:-1000000}
PID=${2:-$(pgrep -x sse-kafka | head -n 1)}
HERE=$(cd "$(dirname "$0")" && pwd)

declare -A WANT
while IFS= read -r line; do
    [[ $line =~ ^([a-z0-9_.-]+)\ =\ (.*)$ ]] && WANT[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
done < <("$HERE/sysctl.sh" "$STREAMS")

printf '%-36s %-28s %s\n' "setting" "now" "for $STREAMS streams"
for key in $(printf '%s\n' "${!WANT[@]}" | sort); do
    now=$(sysctl -n "$key" 2>/dev/null | tr '\t' ' ' || echo "-")
    printf '%-36s %-28s %s\n' "$key" "${now:--}" "${WANT[$key]}"
done
printf '%-36s %-28s %s\n' "ulimit -n (this shell)" "$(ulimit -n)" "$(( STREAMS + STREAMS / 10 + 65536 ))"
if [ -n "${PID:-}" ] && [ -r "/proc/$PID/limits" ]; then
    printf '%-36s %-28s\n' "sse-kafka pid $PID open files" "$(awk '/Max open files/ {print $4" (soft) "$5" (hard)"}' "/proc/$PID/limits")"
    printf '%-36s %-28s\n' "sse-kafka pid $PID threads" "$(ls "/proc/$PID/task" | wc -l)"
fi
if [ -r /sys/kernel/mm/transparent_hugepage/enabled ]; then
    printf '%-36s %-28s %s\n' "transparent_hugepage/enabled" "$(cat /sys/kernel/mm/transparent_hugepage/enabled)" "[madvise]"
fi
printf '%-36s %-28s\n' "cores" "$(nproc)"
printf '%-36s %-28s\n' "io_uring_disabled" "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo '- (not present: enabled)')"
