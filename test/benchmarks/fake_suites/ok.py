"""A suite that returns two rows, one meeting its target and one missing it."""


def run(threads, device, quick):
    rows = []
    for th in threads:
        rows.append(
            dict(
                name="fast",
                metric="time",
                value=1.0,
                unit="s",
                threads=th,
                device=device,
                target=2.0,
                target_rule="<=",
                quick=quick,
            )
        )
        rows.append(
            dict(
                name="slow",
                metric="time",
                value=3.0,
                unit="s",
                threads=th,
                device=device,
                target=2.0,
                target_rule="<=",
            )
        )
    return rows
