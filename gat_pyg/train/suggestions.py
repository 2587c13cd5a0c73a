"""'Did you mean ...?': the closest known name to a misspelt config key, dataset, model, config
file or command-line option.

Spelling mistakes are found by :func:`difflib.get_close_matches`. Names that mean the same
thing but are spelt nothing alike (``learning_rate`` for ``lr``) are not close in that sense, so
:data:`ALIASES` lists the names other GAT / GCN code uses for our keys: the official GAT code
(PetarV-/GAT ``execute_cora.py``: ``l2_coef``, ``hid_units``, ``n_heads``, ``nb_epochs``,
``in_drop``, ``coef_drop``), Kipf & Welling's GCN flags (``learning_rate``, ``hidden1``), DGL's
GAT example (``num_heads``, ``feat_drop``, ``attn_drop``) and common spellings. An alias is only
suggested where its key is among the candidates (``reproduce`` has no ``--seed``).

This module imports nothing beyond the standard library (the CLI answers errors before torch
is loaded).
"""
import difflib
from typing import Optional, Sequence

ALIASES = {
    'learning_rate': 'lr', 'learningrate': 'lr', 'lr_rate': 'lr',
    'l2': 'weight_decay', 'l2_coef': 'weight_decay', 'l2_reg': 'weight_decay',
    'wd': 'weight_decay', 'decay': 'weight_decay',
    'hidden': 'hidden_channels', 'hidden1': 'hidden_channels', 'hid_units': 'hidden_channels',
    'hidden_dim': 'hidden_channels', 'hidden_size': 'hidden_channels',
    'hidden_units': 'hidden_channels', 'hidden_features': 'hidden_channels',
    'num_heads': 'heads', 'n_heads': 'heads', 'attention_heads': 'heads',
    'num_out_heads': 'out_heads', 'output_heads': 'out_heads',
    'layers': 'num_layers', 'n_layers': 'num_layers', 'depth': 'num_layers',
    'nb_epochs': 'epochs', 'n_epochs': 'epochs', 'num_epochs': 'epochs', 'max_epochs': 'epochs',
    'in_drop': 'dropout', 'feat_drop': 'dropout', 'input_dropout': 'dropout',
    'ffd_drop': 'dropout', 'drop': 'dropout',
    'coef_drop': 'attn_dropout', 'attn_drop': 'attn_dropout', 'attention_dropout': 'attn_dropout',
    'activation': 'act', 'nonlinearity': 'act',
    'random_seed': 'seed', 'rng_seed': 'seed',
    'arch': 'model', 'architecture': 'model', 'model_name': 'model',
    'data': 'dataset', 'dataset_name': 'dataset',
    'fanout': 'num_neighbors', 'fanouts': 'num_neighbors', 'num_neighbours': 'num_neighbors',
    'neighbors': 'num_neighbors', 'neighbours': 'num_neighbors',
    'base': 'extends', 'inherit': 'extends', 'inherits': 'extends', 'defaults': 'extends',
}
"""Another code base's name (lower case, underscores) -> our config key."""


def closest(word: str, candidates: Sequence[str], cutoff: float = 0.6) -> Optional[str]:
    """The candidate ``word`` most likely stands for: its alias (:data:`ALIASES`), else the
    closest spelling with a similarity of at least ``cutoff`` (difflib's ratio, 0 to 1), else
    ``None``. ``word`` is compared in lower case with dashes read as underscores."""
    key = str(word).lower().replace('-', '_')
    if ALIASES.get(key) in candidates:
        return ALIASES[key]
    close = difflib.get_close_matches(key, list(candidates), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """``" (did you mean 'lr'?)"``, to append to an error message, or ``''``."""
    match = closest(word, candidates)
    return f' (did you mean {match!r}?)' if match else ''


def closest_option(option: str, options: Sequence[str]) -> Optional[str]:
    """The command-line option (``--weight-decay``) most likely meant by ``option``
    (``--weight-decy``, ``--learning-rate``), among ``options``; ``None`` when none is close.

    Options are compared without their dashes and with a stricter cutoff (0.75) than keys:
    short option names are all alike (``--seed`` and ``--heads`` share four of six letters).
    """
    by_key = {}
    for o in options:                 # the first spelling of each: --weight-decay, not _decay
        if o.startswith('--'):
            by_key.setdefault(o.lstrip('-').replace('-', '_'), o)
    match = closest(option.split('=')[0].lstrip('-'), list(by_key), cutoff=0.75)
    return by_key[match] if match else None
