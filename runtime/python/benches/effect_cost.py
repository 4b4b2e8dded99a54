"""What a Python effect costs through the interpreter against a Rust one: one role
runs N rounds of a loop whose body is one extension effect, either the kit's
`Phase` (a Rust handler that records a phase) or a Python effect whose handler
records a phase too (`ctx.phase`). Both are unordered, so no frame is added.

    python runtime/python/benches/effect_cost.py [rounds, default 20000]
"""

import sys
import time

import stormchor as sc

ROLE = sc.Role("Solo")


def timed(program, kit):
    started = time.perf_counter()
    report = program.run(kit)
    took = time.perf_counter() - started
    assert report.success, report.text
    return took


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    kit = sc.Kit()
    kit.register("mark", lambda ctx: ctx.phase("mark"))
    # The Rust effect is far cheaper: ten times the rounds, for a time above the noise.
    rust_rounds = rounds * 10
    empty = sc.Program().role(ROLE).loop_n(rust_rounds, sc.Program())
    rust = sc.Program().role(ROLE).loop_n(rust_rounds, sc.Program().ext(sc.kit.Phase("mark"), at=ROLE))
    python = sc.Program().role(ROLE).loop_n(
        rounds, sc.Program().ext(sc.effect("mark", ordered=False), at=ROLE)
    )
    base = timed(empty, kit)
    rust_s = timed(rust, kit)
    python_s = timed(python, kit)
    # The empty loop's time is the run's fixed cost (nodes, tasks) plus its rounds.
    rust_us = (rust_s - base) / rust_rounds * 1e6
    python_us = (python_s - base * rounds / rust_rounds) / rounds * 1e6
    print(f"empty loop of {rust_rounds} rounds {base:.3f} s; {rust_rounds} Rust effects {rust_s:.3f} s; "
          f"{rounds} Python effects {python_s:.3f} s")
    ratio = f"{python_us / rust_us:.0f}x" if rust_us > 0 else "n/a"
    print(f"per effect: Rust {rust_us:.2f} us, Python {python_us:.1f} us ({ratio})")


if __name__ == "__main__":
    main()
