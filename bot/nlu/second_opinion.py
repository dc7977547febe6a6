"""NLU component: a second opinion on the intent, next to DIET's.

DIET is a small transformer trained for 80 epochs on a few thousand examples: it is sure of
itself, and a few changed training examples can move its decisions a lot. A multinomial logistic
regression on the same sparse features (lemma counts, character n-grams, regexes: what the
featurizers give DIET) is convex, so it always lands on the same, smoother boundaries. Besides
DIET's features it reads the pairs of neighbouring lemmas ("niet aangekomen", "change my",
"geld terug"): the word order a bag of words loses (chosen on validation splits of the training
data: config.yml says by how much). This
component mixes both: ``p = weight * DIET + (1 - weight) * linear``, sharpened by an exponent
(the mix of a sure and a soft model is soft; the exponent keeps FallbackClassifier's thresholds
meaningful without changing the order). The mixed ranking replaces DIET's; DIET's own intent
stays in the parse data as ``diet_intent``. Out-of-scope topics are added up as
bot/nlu/out_of_scope_topics.py does.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any, Dict, List, Optional, Text, Tuple

import numpy as np
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import (
    FEATURE_TYPE_SENTENCE, INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY, PREDICTED_CONFIDENCE_KEY, TEXT,
)
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.out_of_scope_topics import OUT_OF_SCOPE, is_topic

logger = logging.getLogger(__name__)

MODEL_FILE = "second_opinion.pkl"
DIET_INTENT = "diet_intent"
LINEAR_RANKING = "linear_ranking"
DIET_RANKING = "diet_ranking"


def sentence_vector(message: Message) -> Optional[scipy.sparse.csr_matrix]:
    """The message's sentence-level sparse features (all featurizers, in the order Rasa combines
    them for DIET), sublinear, L2-normalised. Only the sentence features are stacked: Rasa's
    ``get_sparse_features`` would also combine the per-token ones, which cost more than the rest
    of this component."""
    parts = [feature.features for feature in message.features
             if feature.attribute == TEXT and feature.is_sparse() and feature.type == FEATURE_TYPE_SENTENCE]
    if not parts:
        return None
    vector = scipy.sparse.hstack(parts, format="csr", dtype=np.float64)
    vector.data = np.log1p(vector.data)
    norm = np.sqrt(vector.multiply(vector).sum())
    return vector / norm if norm > 0 else vector


def lemma_text(message: Message) -> str:
    """The message's lemmas joined by spaces: the tokens the tokenizer made of the text the intent
    is read from (identity details masked, punctuation dropped), lower-cased."""
    return " ".join((token.lemma or token.text).lower() for token in message.get(TOKENS_NAMES[TEXT]) or [])


def ngram_vectorizer(max_n: int) -> Any:
    """TF-IDF over the lemma n-grams (1..max_n) of :func:`lemma_text`, sublinear, L2-normalised."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(analyzer="word", tokenizer=str.split, token_pattern=None, lowercase=False,
                           ngram_range=(1, max_n), sublinear_tf=True, dtype=np.float64)


def features(message: Message, vectorizer: Any, ngram_weight: float) -> Optional[scipy.sparse.csr_matrix]:
    """DIET's sentence features, with the lemma n-grams (times ``ngram_weight``) beside them when
    there is a vectorizer, L2-normalised as a whole."""
    vector = sentence_vector(message)
    if vector is None or vectorizer is None:
        return vector
    ngrams = vectorizer.transform([lemma_text(message)])
    vector = scipy.sparse.hstack([vector, ngram_weight * ngrams], format="csr", dtype=np.float64)
    norm = np.sqrt(vector.multiply(vector).sum())
    return vector / norm if norm > 0 else vector


def _entries(matrix: Any) -> Tuple[np.ndarray, np.ndarray]:
    """(column indices, values) of a one-row sparse matrix."""
    coo = matrix if isinstance(matrix, scipy.sparse.coo_matrix) else scipy.sparse.coo_matrix(matrix)
    return coo.col, coo.data


def linear_probabilities(message: Message, model: Any, vectorizer: Any, ngram_weight: float) -> Optional[np.ndarray]:
    """``probabilities(model, features(message, vectorizer, ngram_weight))`` for one message at
    prediction time, without building scipy matrices: the same features as (column, value) pairs,
    normalised the same way, and only the weights of the columns the message has. Building and
    stacking the matrices, and multiplying by the transposed weights (which numpy copies whole,
    36,000 × 38 of them), cost 6-7 ms CPU a parse; this costs 1.5-1.8 ms, most of it the n-gram
    vectorizer (``scripts/nlu_component_times.py``; ``tests/unit/test_nonsense.py`` checks both
    agree). None where ``features`` is None; the two-class model goes the scikit-learn way."""
    columns: List[np.ndarray] = []
    values: List[np.ndarray] = []
    offset = 0
    for feature in message.features:
        if feature.attribute == TEXT and feature.is_sparse() and feature.type == FEATURE_TYPE_SENTENCE:
            cols, data = _entries(feature.features)
            columns.append(cols + offset)
            values.append(data)
            offset += feature.features.shape[1]
    if not columns or model.coef_.shape[0] == 1:
        vector = features(message, vectorizer, ngram_weight)
        return None if vector is None else probabilities(model, vector)
    index = np.concatenate(columns)
    if len(np.unique(index)) != len(index):  # repeated columns add up in a matrix: take that way
        return probabilities(model, features(message, vectorizer, ngram_weight))
    data = np.log1p(np.concatenate(values).astype(np.float64))
    norm = np.sqrt(np.dot(data, data))
    if norm > 0:
        data = data / norm
    if vectorizer is not None:
        ngrams = vectorizer.transform([lemma_text(message)])
        index = np.concatenate([index, ngrams.indices + offset])
        data = np.concatenate([data, ngram_weight * ngrams.data])
        norm = np.sqrt(np.dot(data, data))
        if norm > 0:
            data = data / norm
    scores = model.coef_[:, index] @ data + model.intercept_
    scores = np.exp(scores - scores.max())
    return scores / scores.sum()


def probabilities(model: Any, vector: scipy.sparse.csr_matrix) -> np.ndarray:
    """``model.predict_proba(vector)[0]`` for a multinomial logistic regression, computed directly
    (softmax of the linear scores) without scikit-learn's per-call input checks."""
    if model.coef_.shape[0] == 1:  # two classes: scikit-learn's own binary formula
        return model.predict_proba(vector)[0]
    scores = np.asarray(vector @ model.coef_.T).ravel() + model.intercept_
    scores = np.exp(scores - scores.max())
    return scores / scores.sum()


def merge_topics(probabilities: Dict[str, float]) -> Dict[str, float]:
    """Out-of-scope topics added up into out_of_scope."""
    merged: Dict[str, float] = {}
    for name, p in probabilities.items():
        key = OUT_OF_SCOPE if is_topic(name) else name
        merged[key] = merged.get(key, 0.0) + p
    return merged


def mix(diet: List[Dict[str, Any]], linear: Dict[str, float], weight: float, sharpen: float) -> List[Dict[str, Any]]:
    """The mixed, sharpened and renormalised ranking (as long as DIET's)."""
    mixed: Dict[Optional[str], float] = {name: (1.0 - weight) * p for name, p in linear.items()}
    for item in diet:
        name = item.get(INTENT_NAME_KEY)
        mixed[name] = mixed.get(name, 0.0) + weight * float(item.get(PREDICTED_CONFIDENCE_KEY) or 0.0)
    mixed = {name: p ** sharpen for name, p in mixed.items()}
    total = sum(mixed.values()) or 1.0
    ordered = sorted(mixed.items(), key=lambda kv: -kv[1])[: len(diet)]
    return [{INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: round(p / total, 6)} for name, p in ordered]


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class SecondOpinion(GraphComponent):
    """Mixes a logistic regression's intent probabilities into DIET's ranking."""

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        """The component's default config."""
        return {"weight": 0.5, "C": 10.0, "balanced": False, "sharpen": 2.0, "random_seed": 42,
                "ngrams": 0, "ngram_weight": 1.0, "expose": False}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 model: Any = None, vectorizer: Any = None) -> None:
        self._config = {**self.get_default_config(), **(config or {})}
        self._model_storage = model_storage
        self._resource = resource
        self._model = model
        self._vectorizer = vectorizer

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> SecondOpinion:
        """Creates an untrained component (see parent class for full docstring)."""
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> SecondOpinion:
        """Loads the trained linear model and its n-gram vectorizer."""
        stored: Dict[str, Any] = {}
        try:
            with model_storage.read_from(resource) as directory:
                stored = pickle.loads((Path(directory) / MODEL_FILE).read_bytes())
        except (ValueError, FileNotFoundError, OSError, pickle.UnpicklingError) as error:
            logger.warning("SecondOpinion: no stored model (%s); DIET decides alone", error)
        if not isinstance(stored, dict):  # stored before the n-grams: the bare linear model
            stored = {"model": stored}
        return cls(config, model_storage, resource, stored.get("model"), stored.get("vectorizer"))

    def train(self, training_data: TrainingData) -> Resource:
        """Fits the logistic regression on the featurised intent examples."""
        from sklearn.linear_model import LogisticRegression

        examples = [message for message in training_data.intent_examples
                    if message.get(INTENT) and sentence_vector(message) is not None]
        max_n = int(self._config["ngrams"])
        vectorizer = ngram_vectorizer(max_n).fit([lemma_text(message) for message in examples]) if max_n else None
        rows = [features(message, vectorizer, float(self._config["ngram_weight"])) for message in examples]
        labels = [message.get(INTENT) for message in examples]
        if len(set(labels)) >= 2:
            model = LogisticRegression(C=float(self._config["C"]),
                                       class_weight="balanced" if self._config["balanced"] else None,
                                       max_iter=2000, random_state=int(self._config["random_seed"]))
            model.fit(scipy.sparse.vstack(rows).tocsr(), labels)
            self._model, self._vectorizer = model, vectorizer
            with self._model_storage.write_to(self._resource) as directory:
                (Path(directory) / MODEL_FILE).write_bytes(pickle.dumps({"model": model, "vectorizer": vectorizer}))
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Nothing to add to the training data."""
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        """Replaces intent and ranking by the mix of DIET's and the linear model's."""
        if self._model is None:
            return messages
        classes = list(self._model.classes_)
        for message in messages:
            ranking = message.get(INTENT_RANKING_KEY)
            if not ranking:
                continue
            found = linear_probabilities(message, self._model, self._vectorizer, float(self._config["ngram_weight"]))
            if found is None:
                continue
            linear = merge_topics(dict(zip(classes, (float(p) for p in found))))
            new_ranking = mix(ranking, linear, float(self._config["weight"]), float(self._config["sharpen"]))
            message.set(DIET_INTENT, message.get(INTENT), add_to_output=True)
            if self._config["expose"]:  # both opinions in the parse data, to tune the mix offline
                message.set(LINEAR_RANKING, linear, add_to_output=True)
                message.set(DIET_RANKING, ranking, add_to_output=True)
            message.set(INTENT, dict(new_ranking[0]), add_to_output=True)
            message.set(INTENT_RANKING_KEY, new_ranking, add_to_output=True)
        return messages
