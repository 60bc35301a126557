"""What penstat promises others: the delivery contract with senders, the PENSTAT_HOME layout,
and the published interface that dashboards and statisticians read."""
