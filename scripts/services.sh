#!/usr/bin/env bash
# Make sure the local PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) the tests
# use are running; start whichever is not. Safe to run when both are up.
set -uo pipefail

redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; }
postgres_up() { pg_isready -h 127.0.0.1 -p 5432 -q >/dev/null 2>&1; }

if command -v redis-server >/dev/null 2>&1 && ! redis_up; then
    echo "starting Redis on 127.0.0.1:6379"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
        --dir /var/lib/redis --logfile /var/log/redis/ci.log
    for _ in $(seq 50); do redis_up && break; sleep 0.1; done
fi

if command -v pg_ctlcluster >/dev/null 2>&1 && ! postgres_up; then
    echo "starting PostgreSQL on 127.0.0.1:5432"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start
    for _ in $(seq 100); do postgres_up && break; sleep 0.1; done
fi

redis_up && echo "Redis: up" || echo "Redis: not reachable"
# The Redis Cluster and outage tests start their own redis-server processes.
for tool in redis-server redis-cli; do
    command -v "$tool" >/dev/null 2>&1 || echo "$tool: not installed (the Redis Cluster and fault tests need it)"
done
postgres_up && echo "PostgreSQL: up" || echo "PostgreSQL: not reachable"
exit 0
