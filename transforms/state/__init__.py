"""Cross-run state under OUT/_state/, read and written through Beam's
FileSystems (local disk, gs://, s3://):

    _state/lease.json               the output's lease: the one run that may write now (lease.py)
    _state/.lease.json.lock         local disk only: the lock of its compare-and-swap (conditional.py)
    _state/runs/<run_id>.json       "open" marker: the run started and has not committed
    _state/feeds/<run_id>.parquet   the run's FeedState of every feed it handled
    _state/seen/<run_id>.parquet    identities of the stories the run wrote (+ one commit row)
    _state/clusters/<run_id>.parquet   sketch and cluster of each story the run wrote (+ one commit row)
    _state/{feeds,seen,clusters}/<run_id>-w<start>-p<pane>.parquet   the same, for one window pane of a streaming job
    _state/{feeds,seen,clusters}/compacted-<uuid>.parquet   many runs' rows merged and pruned
    _state/seen/compacted-<uuid>.digests   that compaction's identities, sorted, fixed-width, for
                                    memory-mapping (layout: seen_digests.py); written before its
                                    Parquet file, deleted or moved aside with it (an orphan goes at
                                    a later seen compaction once ORPHAN_DIGEST_SECONDS old), never
                                    the truth: a reader whose digest file is missing, damaged (its
                                    body's checksum) or made from another file reads the Parquet file
    _state/corrupt/...              unreadable state files, moved aside for inspection
    _state/compact/<token>.json     one swap of `newswatch compact` under way: its merged file and
                                    sources (layout: pipeline/compact.py); finished by the next compaction

One run writes at a time: a run holds the lease (lease.py) from before its
first fetch until after its commit, and a streaming job for its lifetime.
Within that, each run only ever creates its own files (temp name + rename, so
a file is whole or absent), and readers merge all files. A run that holds
the lease and finds another run's marker open rolls that interrupted run
forward before its own work (recovery.py). Every row carries run_id and
committed_at; a reader

- ignores the rows of runs that have an open marker (running, killed, or being
  re-run with the same --run-id): state never vouches for stories a run may
  not have written;
- keeps, per run id, only the rows of its latest commit (a re-run supersedes
  the earlier attempt, even after compaction merged it);
- for feeds, takes the most recently fetched row per feed; for stories, the
  union of keys; for clusters, the newest row per story.

Units of commit. A batch run commits once, under its run id, and its marker
is what keeps its rows out of sight until then (written at start by the
command line, deleted by the commit). A streaming job never commits under its
own run id; its marker stays open while it runs (so a job that dies is
recovered) and it commits every output window pane as a unit of its own, run id `<run_id>-w<window start>-p<pane>` (the tag of the
pane's output files; transforms.state.commit.CommitWindows), once that pane's
story, fetch and error files are written. A unit has no marker because it
needs none: its clusters file, then its seen file are renamed into place whole, then its feeds file
(a unit cut off between the two lacks only that window's validators: the
next job sends older ones, or none, and fetches in full what changed since), so every reader sees a unit's rows as soon as they exist,
while the job keeps running. A job stopped mid-window has written neither
that window's files nor its unit; a unit id, like a run id, is never reused.

Compaction merges a folder when it holds more than COMPACT_AFTER files: it writes
the merged file first and only then deletes its inputs (those still unchanged),
so a reader that lists the folder at any moment finds every row at least once.
A seen compaction keeps the rows of open runs (they may yet be superseded) and
records each row's run and commit in its digest file, so a reader applies the
rules above to mapped digests at lookup (seen_index.Segment) without copying them.

The package, by concern (import from the modules themselves):

    store.py        StateStore: the files above, their schemas and records, compaction
    seen_index.py   SeenIndex: the remembered story identities, mapped or in memory, for lookups
    seen_files.py   reading and compacting _state/seen row group by row group, digest columns only
    seen_digests.py the digest file of a seen compaction: its layout, writing, mapping, local cache
    cluster_index.py  ClusterIndex: the remembered stories' sketches and clusters, for the cluster stage
    commit.py       CommitState: the batch pipeline's last stage, which commits a run's state;
                    CommitWindows: a streaming job's commit of each window pane
    lease.py        Lease: one writer per output, its heartbeat and the commit fence
    conditional.py  create-if-absent and compare-and-swap of one object, per filesystem
    recovery.py     recover_interrupted: rolls forward the runs whose marker was left open
"""
