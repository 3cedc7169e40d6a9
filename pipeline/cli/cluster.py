"""``drlim submit`` (a job on a Ray cluster through the Ray Jobs API) and ``status``, ``logs``, ``stop``."""

from __future__ import annotations

import argparse

from pipeline.cli.arguments import add_address, add_job


def register(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "submit",
        help="run a job on a Ray cluster through the Ray Jobs API",
        description="Ship this project to a Ray cluster and run `drlim run JOB` there as a Ray "
        "job: the source tree as working_dir, the project's requirements as a pip "
        "runtime env, MLFLOW_TRACKING_* and DRLIM_DATA_ROOT passed through. Streams "
        "the job's logs and exits non-zero when the job fails.",
    )
    add_job(p)
    p.add_argument(
        "--workdir",
        required=True,
        help="working directory ON THE CLUSTER (every node must see it), e.g. /mnt/shared/drlim",
    )
    p.add_argument("--data-root", help="data root on the cluster (default: the job's, then DRLIM_DATA_ROOT there)")
    add_address(p)
    p.add_argument(
        "--no-deps",
        dest="ship_requirements",
        action="store_false",
        help="don't ship the requirements (the cluster's image already has them)",
    )
    p.add_argument("--no-wait", dest="wait", action="store_false", help="print the job id and return at once")
    p.set_defaults(func=submit)

    for name, text in (
        ("status", "show a submitted job's status"),
        ("logs", "print a submitted job's logs"),
        ("stop", "stop a submitted job"),
    ):
        p = commands.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]} (Ray Jobs API).")
        p.add_argument("job_id", help="the id `drlim submit` printed, e.g. raysubmit_AbC123")
        add_address(p)
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="keep streaming until the job ends")
        p.set_defaults(func=follow_job)


def submit(args: argparse.Namespace) -> int:
    from pipeline.orchestration.submit import submit as submit_job

    job_id, code = submit_job(
        args.job, args.overrides, args.workdir, args.data_root, args.address, args.ship_requirements, args.wait
    )
    print(f"job: {job_id}" + ("" if args.wait else f"  (drlim logs {job_id} --follow)"))
    return code


def follow_job(args: argparse.Namespace) -> int:
    from pipeline.orchestration.submit import client, describe, follow

    jobs = client(args.address)
    print(describe(jobs, args.job_id))  # also checks that the job exists
    if args.command == "stop":
        jobs.stop_job(args.job_id)
        print(f"stop requested for {args.job_id}")
    elif args.command == "logs":
        if args.follow:
            return follow(jobs, args.job_id)
        print(jobs.get_job_logs(args.job_id), end="")
    return 0
