"""``innx attack``: what each layer sees in an adversarially attacked image. :mod:`.methods` holds
FGSM, PGD and the noise control; :mod:`.classes` the classifier's classes and the attribute that
holds them; :mod:`.readings` the attack of the rows and what each layer's invariance samples
show; :mod:`.attack` runs it; :mod:`.record` and :mod:`.figures` write its files."""
