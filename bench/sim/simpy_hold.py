#!/usr/bin/python3
"""The hold model in Debian's python3-simpy (SimPy 2.3.1, classic API): N processes, each
holding for an exponential time with the given mean, forever. Prints events per second.

Usage: /usr/bin/python3 simpy_hold.py PENDING EVENTS [MEAN]
"""
import random
import sys
import time

from SimPy.Simulation import Process, activate, hold, initialize, simulate

pending = int(sys.argv[1])
target = int(sys.argv[2])
mean = float(sys.argv[3]) if len(sys.argv) > 3 else 10000.0
count = 0


class Holder(Process):
    def run(self):
        global count
        while True:
            yield hold, self, random.expovariate(1.0 / mean)
            count += 1


random.seed(1)
initialize()
for _ in range(pending):
    p = Holder()
    activate(p, p.run())
# Each process fires about once per `mean`: run long enough for ~target events.
until = mean * target / pending
start = time.perf_counter()
simulate(until=until)
elapsed = time.perf_counter() - start
print(f"simpy pending={pending} events={count} seconds={elapsed:.3f} events_per_second={count / elapsed:.0f}")
