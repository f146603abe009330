"""Zero-shot search (AutoCTS++): ``seeds`` generates and exports (task, spec, score) records,
``features`` gives the comparator's task features (cached outside the package),
``comparators`` trains and evaluates T-AHC on the records, ``query`` ranks candidates for a
new dataset with a trained comparator."""
