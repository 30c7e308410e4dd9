#!/bin/bash
# Separate hosts on one machine: N network namespaces jamz-carI on a bridge (root only).
#   scripts/netns.sh up N     create jamz-car1..N (10.77.0.I/24, default route and multicast via the bridge)
#   scripts/netns.sh down     remove them
#   scripts/netns.sh cut I    take car I's link down;  scripts/netns.sh restore I  bring it back
#   scripts/netns.sh link I   give car I a second interface, eth1 (10.78.0.I/24) on a second bridge
#   scripts/netns.sh unplug I take car I's first interface off the bridge (it stays up, alone)
#   scripts/netns.sh unaddr I car I loses its address and routes (Wi-Fi dropped: sends fail with ENETUNREACH)
#   scripts/netns.sh readdr I and gets them back
#   scripts/netns.sh cloud N  a namespace jamz-cloud (the internet: the relay's broker at 10.79.255.1) and a
#                             wan0 link to it from each of jamz-car1..N (made if missing, with no LAN):
#                             car I is 10.79.I.2, routes 10.79.0.0/16 via 10.79.I.1; the cloud does not
#                             forward, so cars reach the broker and nothing of each other
#   scripts/netns.sh wancut I / wanrestore I   car I's mobile data link down / up
set -euo pipefail
BR=br-jamz
BR2=br-jamz2
cmd=${1:-}
case "$cmd" in
  up)
    n=${2:?how many cars}
    "$0" down >/dev/null 2>&1 || true
    ip link add $BR type bridge
    ip addr add 10.77.0.254/24 dev $BR   # the host itself, for tests that send from outside
    ip link set $BR up
    for i in $(seq 1 "$n"); do
      ns=jamz-car$i
      ip netns add $ns
      ip link add veth$i type veth peer name eth0 netns $ns
      ip link set veth$i master $BR up
      ip -n $ns addr add 10.77.0.$i/24 dev eth0
      ip -n $ns link set lo up
      ip -n $ns link set eth0 up multicast on
      ip -n $ns route add default dev eth0
    done
    ;;
  down)
    for ns in $(ip netns list | awk '/^jamz-(car|cloud)/ {print $1}'); do
      ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
      ip netns del "$ns"
    done
    for v in $(ip -o link show | awk -F': ' '{print $2}' | grep -o '^veth[0-9]*' || true); do ip link del "$v" 2>/dev/null || true; done
    ip link del $BR 2>/dev/null || true
    ip link del $BR2 2>/dev/null || true
    ;;
  link)
    i=${2:?car}
    ip link show $BR2 >/dev/null 2>&1 || { ip link add $BR2 type bridge; ip link set $BR2 up; }
    ip link add vethb$i type veth peer name eth1 netns jamz-car$i
    ip link set vethb$i master $BR2 up
    ip -n jamz-car$i addr add 10.78.0.$i/24 dev eth1
    ip -n jamz-car$i link set eth1 up multicast on
    ;;
  cloud)
    n=${2:?how many cars}
    ip netns add jamz-cloud
    ip -n jamz-cloud link set lo up
    ip -n jamz-cloud addr add 10.79.255.1/32 dev lo
    ip netns exec jamz-cloud sysctl -q -w net.ipv4.ip_forward=0
    for i in $(seq 1 "$n"); do
      ns=jamz-car$i
      ip netns list | grep -q "^$ns\b" || { ip netns add $ns; ip -n $ns link set lo up; }
      ip link add wan$i netns jamz-cloud type veth peer name wan0 netns $ns
      ip -n jamz-cloud addr add 10.79.$i.1/24 dev wan$i
      ip -n jamz-cloud link set wan$i up
      ip -n $ns addr add 10.79.$i.2/24 dev wan0
      ip -n $ns link set wan0 up
      ip -n $ns route add 10.79.0.0/16 via 10.79.$i.1
    done
    ;;
  wancut) ip -n jamz-cloud link set wan"${2:?car}" down ;;
  wanrestore) ip -n jamz-cloud link set wan"${2:?car}" up ;;
  unplug) ip link set veth"${2:?car}" nomaster ;;
  unaddr) ip -n jamz-car"${2:?car}" addr flush dev eth0 ;;
  readdr)
    i=${2:?car}
    ip -n jamz-car$i addr add 10.77.0.$i/24 dev eth0
    ip -n jamz-car$i route add default dev eth0 2>/dev/null || true
    ;;
  cut) ip link set veth"${2:?car}" down ;;
  restore) ip link set veth"${2:?car}" up ;;
  *) echo "usage: $0 up N | down | cut I | restore I | link I | unplug I | unaddr I | readdr I | cloud N | wancut I | wanrestore I" >&2; exit 2 ;;
esac
