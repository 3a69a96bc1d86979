"""Model training (build time and TrainFunction: the one package that imports scikit-learn).

`python -m supportlens.training` (what `make models` runs) retrains the shipped sentiment and
abuse models from ../shared/data; `supportlens train` trains on a user's labelled CSV.
"""
