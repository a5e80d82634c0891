"""Training and the campaign job on Apache Spark (`--engine spark`).

pyspark is an optional extra (`pip install -e '.[spark]'`); nothing here is imported
unless an engine of Spark is asked for. The Spark code computes the same numbers as
the local path from the same store and writes the same artifacts:

    session.py     a SparkSession with the project's settings, and clear errors
                   (pyspark or Java missing, master unreachable)
    source.py      the purchase lines as a Spark DataFrame: PostgreSQL over JDBC, or
                   a Parquet export (`recsys export purchases`)
    confidence.py  `recsys.matrix.build_matrix`'s confidences as Spark aggregates
    train.py       MLlib ALS (implicitPrefs) into a `--engine local` artifact
    campaign.py    the campaign job's drafting on executors (`recsys campaign --engine spark`)
"""
