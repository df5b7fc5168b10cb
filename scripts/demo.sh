#!/usr/bin/env bash
# The operator guide's walk-through: two daemons (A on 9200, B on 9250) on temporary homes,
# a pair each way on th_federation_demo, a record from each side seen on the other.
set -euo pipefail
A=$(mktemp -d /tmp/spl-a.XXXX)
B=$(mktemp -d /tmp/spl-b.XXXX)
for port in 9200 9250; do
  if curl -s "http://localhost:$port/health" >/dev/null 2>&1; then
    echo "port $port is taken (a daemon from an earlier demo?): stop it with SYNCROPEL_HOME=<its home> spl serve --stop" >&2
    exit 1
  fi
done

echo "» 1. start both daemons"
SYNCROPEL_HOME=$A spl init --force >/dev/null
SYNCROPEL_HOME=$A spl serve --daemon --port 9200 --host 0.0.0.0
SYNCROPEL_HOME=$B spl init --force >/dev/null
SYNCROPEL_HOME=$B spl serve --daemon --port 9250 --host 0.0.0.0

echo "» 2. capture each instance's DID"
DID_A=$(curl -s http://localhost:9200/v1/identity | jq -r '.did')
DID_B=$(curl -s http://localhost:9250/v1/identity | jq -r '.did')
echo "   A = $DID_A"
echo "   B = $DID_B"

echo "» 3. pair on B pulling from A, and (5.) on A pulling from B"
SYNCROPEL_HOME=$B spl fleet sync add --peer-url http://localhost:9200 "$DID_A" th_federation_demo
SYNCROPEL_HOME=$A spl fleet sync add --peer-url http://localhost:9250 "$DID_B" th_federation_demo

echo "» 4. emit on each side"
SYNCROPEL_HOME=$A spl intend --thread th_federation_demo "hello from A" >/dev/null
SYNCROPEL_HOME=$B spl intend --thread th_federation_demo "hello from B" >/dev/null
for _ in $(seq 50); do
  n=$(SYNCROPEL_HOME=$B spl thread records th_federation_demo --json | jq length)
  m=$(SYNCROPEL_HOME=$A spl thread records th_federation_demo --json | jq length)
  [ "$n" = 2 ] && [ "$m" = 2 ] && break
  sleep 0.1
done
echo "   on A:"; SYNCROPEL_HOME=$A spl thread records th_federation_demo | sed 's/^/     /'
echo "   on B:"; SYNCROPEL_HOME=$B spl thread records th_federation_demo | sed 's/^/     /'

echo "» 6./7. status"
SYNCROPEL_HOME=$B spl status | sed 's/^/   /'
echo
echo "Both daemons keep running. Try: SYNCROPEL_HOME=$A spl intend --thread th_federation_demo \"more\""
echo "Stop them with: SYNCROPEL_HOME=$A spl serve --stop; SYNCROPEL_HOME=$B spl serve --stop"
