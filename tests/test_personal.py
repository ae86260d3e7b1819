"""Learning each person's handwriting: at once, only for them, bounded, forgettable, on any worker."""

from __future__ import annotations

import base64
import uuid

import numpy as np
import pytest

from draw2digit.canvas import to_png
from draw2digit.feedback import FeedbackStore
from draw2digit.personal import (
    NOT_A_DIGIT,
    TAUGHT_REASON,
    InvalidUser,
    Memory,
    Personalizer,
    adapt,
    adapt_number,
    check_user,
)
from draw2digit.training.synthetic import digit_drawing, non_digit_drawings
from draw2digit_app import create_app
from draw2digit_app.resources import PERSONAL
from tests.conftest import MODELS


def b64(image) -> str:
    return base64.b64encode(to_png(image)).decode()


# the same digit drawn a little differently each time: what one person's 3s look like
THREES = [
    b64(digit_drawing(3, width=w, box=(0.2 + dx, 0.1, 0.8 + dx, 0.9)))
    for w, dx in [(16, 0), (18, 0.02), (20, -0.02)]
]
OTHERS = {d: b64(digit_drawing(d)) for d in range(10) if d != 3}


def predict(client, image: str, user: str | None = None, **extra) -> dict:
    body = {"image": image, **({"user": user} if user else {}), **extra}
    r = client.post("/predict", json=body)
    client.application.extensions[PERSONAL].flush()  # accepted answers are written after the reply
    assert r.status_code == 200, r.get_json()
    return r.get_json()


def correct(client, image: str, label: int, user: str) -> dict:
    r = client.post("/feedback", json={"image": image, "label": label, "user": user})
    assert r.status_code == 201, r.get_json()
    return r.get_json()


def new_user() -> str:
    return str(uuid.uuid4())


def test_a_correction_changes_that_users_next_answer_and_nobody_elses(client):
    teacher, other = new_user(), new_user()
    before = {
        k: predict(client, v) for k, v in [("3", THREES[0]), *((str(d), im) for d, im in OTHERS.items())]
    }
    assert before["3"]["digit"] == 3
    assert predict(client, THREES[0], teacher) == {**before["3"], "personalized": False}

    assert correct(client, THREES[0], 8, teacher)["learned"] is True
    mine = predict(client, THREES[0], teacher)
    assert (mine["digit"], mine["personalized"], mine["model_digit"]) == (8, True, 3)
    assert mine["note"] == "Read as 8 because you taught it; the model alone says 3."
    assert np.argmax(mine["probabilities"]) == 8, "the bars agree with the answer"
    # another drawing of theirs that looks like the corrected one is read as they taught
    assert predict(client, THREES[1], teacher)["digit"] == 8

    # someone who "corrects" every 3 to an 8 changes nobody else's answers
    for image in THREES[1:]:
        correct(client, image, 8, teacher)
    for key, image in [("3", THREES[0]), *((str(d), im) for d, im in OTHERS.items())]:
        assert predict(client, image) == before[key], "without a user: today's answer"
        assert predict(client, image, other) == {**before[key], "personalized": False}
    # and their own other digits stay the model's
    for d, image in OTHERS.items():
        assert predict(client, image, teacher)["digit"] == before[str(d)]["digit"]


def test_a_drawing_the_rule_rejected_is_accepted_once_its_person_corrects_it(client, predictor):
    user = new_user()
    rejected = next(
        im for im, _ in non_digit_drawings(40, family="fit", seed=3) if predictor.predict(im).rejected
    )
    image = b64(rejected)
    assert predict(client, image, user)["rejected"] is True
    correct(client, image, 0, user)
    after = predict(client, image, user)
    assert (after["digit"], after["rejected"], after["personalized"]) == (0, False, True)
    assert after["model_digit"] is None and "it is not a digit" in after["note"]


def test_finished_drawings_are_remembered_as_accepted_and_never_replace_a_correction(app, client, store):
    user = new_user()
    predict(client, THREES[0], user)  # not finished: nothing kept
    personal = Personalizer.for_predictor(store, app.extensions["draw2digit.predictor"])
    assert len(personal.recall(user)) == 0
    predict(client, THREES[0], user, final=True)
    assert personal.recall(user).labels.tolist() == [3]
    correct(client, THREES[0], 8, user)
    assert personal.recall(user).labels.tolist() == [8], "the correction replaces the accepted answer"
    predict(client, THREES[0], user, final=True)  # shown as 8 and accepted: still the correction
    assert personal.recall(user).labels.tolist() == [8]


def test_bad_user_ids_are_a_400_before_any_work(client):
    for bad in ["bob", "", 42, "0f8c2a4e3b1d4c5e9a7f2d6b8e1c4a90", "0f8c2a4e-3b1d-4c5e-9a7f-2d6b8e1c4a9g"]:
        r = client.post("/predict", json={"image": THREES[0], "user": bad})
        assert r.status_code == 400 and "UUID" in r.get_json()["error"], bad
        r = client.post("/feedback", json={"image": THREES[0], "label": 3, "user": bad})
        assert r.status_code == 400, bad
    for bad in ["bob", "0f8c2a4e-3b1d-4c5e-9a7f", "'; drop table memories; --"]:
        r = client.delete(f"/users/{bad}")
        assert r.status_code == 400 and "UUID" in r.get_json()["error"], bad
    with pytest.raises(InvalidUser):
        check_user(None)
    upper = str(uuid.uuid4()).upper()
    assert check_user(upper) == upper.lower(), "one person, one id, whatever the case"


def test_forgetting_removes_the_users_memory_and_corrections_only(client, store):
    user, other = new_user(), new_user()
    correct(client, THREES[0], 8, user)
    correct(client, THREES[1], 5, other)
    r = client.delete(f"/users/{user}")
    assert r.status_code == 200 and r.get_json() == {"user": user, "removed": 2}
    assert predict(client, THREES[0], user)["personalized"] is False
    assert store.load().labels.tolist() == [5], "their correction left the fine-tuning set too"
    assert predict(client, THREES[1], other)["digit"] == 5, "someone else's memory stays"
    assert client.delete(f"/users/{user}").get_json()["removed"] == 0


def test_each_user_keeps_only_their_newest_corrections(predictor, tmp_path):
    store = FeedbackStore(tmp_path / "f.sqlite3")
    client = create_app({"TESTING": True, "MEMORY_SIZE": 2}, predictor=predictor, store=store).test_client()
    user = new_user()
    drawings = [b64(digit_drawing(d)) for d in (1, 4, 7)]
    for image in drawings:
        correct(client, image, 9, user)
    personal = Personalizer.for_predictor(store, predictor, size=2)
    assert personal.recall(user).labels.tolist() == [9, 9], "the cap holds in the database"
    assert predict(client, drawings[0], user)["personalized"] is False, "the oldest correction is gone"
    assert predict(client, drawings[2], user)["digit"] == 9
    assert Personalizer.for_predictor(store, predictor, size=1).prune() == 1, "a lowered cap prunes"


def test_a_correction_on_one_worker_changes_the_next_answer_on_another(predictor, store_url):
    """Two apps with their own connections to one database, as two workers or pods are."""
    first = create_app({"TESTING": True}, predictor=predictor, store=FeedbackStore(store_url)).test_client()
    second = create_app({"TESTING": True}, predictor=predictor, store=FeedbackStore(store_url)).test_client()
    user = new_user()
    assert predict(second, THREES[0], user)["digit"] == 3
    correct(first, THREES[0], 8, user)
    assert predict(second, THREES[0], user)["digit"] == 8
    assert second.delete(f"/users/{user}").status_code == 200
    assert predict(first, THREES[0], user)["digit"] == 3


def test_without_its_database_a_user_gets_the_models_answer(predictor):
    unreachable = FeedbackStore("postgresql+psycopg://nobody@127.0.0.1:9/none")
    client = create_app({"TESTING": True}, predictor=predictor, store=unreachable).test_client()
    user = new_user()
    answer = predict(client, THREES[0], user, final=True)
    assert (answer["digit"], answer["personalized"]) == (3, False)
    assert client.delete(f"/users/{user}").status_code == 503


def test_memories_belong_to_the_model_that_made_their_features(predictor, store):
    user = new_user()
    p = predictor.predict(THREES[0])
    Personalizer(store, "model-a").remember(user, p, 8)
    assert len(Personalizer(store, "model-a").recall(user)) == 1
    assert len(Personalizer(store, "model-b").recall(user)) == 0


def test_a_drawing_taught_as_not_a_digit_is_rejected(predictor):
    p = predictor.predict(THREES[0])
    unit = p.features / np.linalg.norm(p.features)
    taught = adapt(p, Memory(unit[None].astype(np.float32), np.array([NOT_A_DIGIT])))
    assert taught.taught and taught.prediction.rejected and taught.prediction.digit is None
    assert taught.prediction.reason == TAUGHT_REASON and taught.to_dict()["model_digit"] == 3
    far = adapt(p, Memory(-unit[None].astype(np.float32), np.array([8])))
    assert not far.taught and far.prediction == p, "an unlike memory changes nothing"


def test_the_pad_learns_its_users_handwriting_and_forgets_it(predictor, tmp_path):
    from draw2digit.widget import DrawingPad

    store = FeedbackStore(tmp_path / "f.sqlite3")
    pad, other = DrawingPad(predictor, feedback=store), DrawingPad(predictor, feedback=store)
    assert pad.user != other.user, "one user per kernel session"
    seven = [[(60, 50), (220, 50), (120, 250)]]
    pad.draw(seven)
    said = pad.prediction.digit
    taught = (said + 1) % 10
    pad.correct(taught)
    assert f"Learned: your {taught}" in pad.correct_status.value
    assert pad.prediction.digit == taught and "because you taught it" in pad.confidence.value, "at once"
    pad.clear()
    assert pad.draw(seven).digit == taught, "the next drawing like it"
    assert other.draw(seven).digit == said, "another session's pad is not taught"
    pad.forget_button.click()
    assert "Forgotten" in pad.forget_status.value and pad.prediction.digit == said
    assert "taught" not in pad.confidence.value


def test_the_pad_remembers_a_finished_answer_when_it_is_cleared(predictor, tmp_path):
    from draw2digit.widget import DrawingPad

    store = FeedbackStore(tmp_path / "f.sqlite3")
    pad = DrawingPad(predictor, feedback=store)
    pad.draw([[(140, 30), (140, 250)]])
    personal = Personalizer.for_predictor(store, predictor)
    assert len(personal.recall(pad.user)) == 0, "still being drawn"
    pad.clear()
    assert personal.recall(pad.user).labels.tolist() == [1]


@pytest.mark.slow
def test_evaluate_personal_runs_a_writer_through_the_server(capsys, pen_digits, mnist_dir):
    from draw2digit.cli import main

    assert main(["evaluate", "--personal", "--writers", "14"]) == 2
    assert "add --pen" in capsys.readouterr().err
    assert (
        main(["evaluate", "--model", str(MODELS / "heldout-twin"), "--pen", "--personal", "--writers", "14"])
        == 0
    )
    out = capsys.readouterr().out
    row = next(line.split() for line in out.splitlines() if line.split()[:2] == ["14", "250"])
    alone, adapted, corrections = float(row[2].rstrip("%")), float(row[3].rstrip("%")), int(row[4])
    assert corrections > 0 and adapted > alone, "this writer's misreads are learned from"
    assert "accuracy after this many corrections of the same digit" in out and "harm:" in out


def test_a_drawing_its_user_said_is_not_a_digit_is_rejected_for_them(client):
    user = new_user()
    r = client.post("/feedback", json={"image": THREES[0], "label": "not a digit", "user": user})
    assert r.status_code == 201 and r.get_json()["learned"] is True
    mine = predict(client, THREES[0], user)
    assert (mine["digit"], mine["rejected"], mine["model_digit"]) == (None, True, 3)
    assert mine["reason"] == TAUGHT_REASON and predict(client, THREES[0])["digit"] == 3


def test_a_users_correction_is_preprocessed_once(client, monkeypatch):
    """The store and the user's memory read the same 28x28: the drawing is preprocessed once."""
    from PIL import Image

    import draw2digit.feedback
    import draw2digit_app.api
    from draw2digit.preprocess import preprocess

    calls = []

    def counted(source):
        calls.append(source)
        return preprocess(source)

    monkeypatch.setattr(draw2digit_app.api, "preprocess", counted)
    monkeypatch.setattr(draw2digit.feedback, "preprocess", counted)
    user = new_user()
    assert correct(client, THREES[0], 8, user)["learned"] is True
    assert len(calls) == 1
    assert predict(client, THREES[0], user)["digit"] == 8
    calls.clear()
    r = client.post("/feedback", json={"image": b64(Image.new("L", (40, 40), 255)), "label": 3, "user": user})
    assert r.status_code == 400 and "blank" in r.get_json()["error"] and len(calls) == 1


def _number(digits: tuple[int, ...]) -> str:
    from tests.test_feedback import _number_png

    return base64.b64encode(_number_png(digits)).decode()


def test_a_digit_corrected_in_a_number_is_read_as_taught_in_that_users_numbers(client):
    user, other = new_user(), new_user()
    image = _number((4, 2, 7))
    alone = predict(client, image, mode="number")
    assert alone["number"] == "427" and "personalized" not in alone
    assert predict(client, image, user, mode="number") == {
        **alone,
        "personalized": False,
        "digits": [{**d, "personalized": False} for d in alone["digits"]],
    }
    r = client.post("/feedback", json={"image": image, "label": 3, "position": 1, "user": user})
    assert r.status_code == 201 and r.get_json()["learned"] is True

    mine = predict(client, image, user, mode="number")
    assert (mine["number"], mine["personalized"]) == ("437", True)
    four, taught, seven = mine["digits"]
    assert (taught["digit"], taught["model_digit"], taught["personalized"]) == (3, 2, True)
    assert taught["note"] == "Read as 3 because you taught it; the model alone says 2."
    assert np.argmax(taught["probabilities"]) == 3 and taught["box"] == alone["digits"][1]["box"]
    assert not four["personalized"] and not seven["personalized"] and "note" not in four
    # the same 2 in another of their numbers, at another place
    assert predict(client, _number((2, 5)), user, mode="number")["number"] == "35"
    # nobody else's numbers change, and a batch reads each number with the user's memory
    assert predict(client, image, other, mode="number")["number"] == "427"
    r = client.post("/predict", json={"images": [image, _number((2, 5))], "mode": "number", "user": user})
    assert [n["number"] for n in r.get_json()["predictions"]] == ["437", "35"]


def test_a_piece_taught_as_not_a_digit_keeps_its_place_in_the_number(predictor):
    number = predictor.predict_number(base64.b64decode(_number((4, 2, 7))))
    piece = number.digits[1].features
    unit = (piece / np.linalg.norm(piece))[None].astype(np.float32)
    answer = adapt_number(number, Memory(unit, np.array([NOT_A_DIGIT])))
    assert [d.rejected for d in answer.prediction.digits] == [False, True, False]
    assert answer.prediction.number == "427", "a piece still shows its top digit"
    assert answer.notes() == ["Digit 2: Not read as a digit because you taught it; the model alone says 2."]
    assert adapt_number(number, Memory.empty()).prediction == number and not answer.digits[0].taught


def test_without_its_database_a_user_gets_the_models_number(predictor):
    unreachable = FeedbackStore("postgresql+psycopg://nobody@127.0.0.1:9/none")
    client = create_app({"TESTING": True}, predictor=predictor, store=unreachable).test_client()
    answer = predict(client, _number((4, 2, 7)), new_user(), mode="number")
    assert (answer["number"], answer["personalized"]) == ("427", False)


def test_the_pad_reads_a_number_with_what_its_user_taught(predictor, tmp_path):
    from draw2digit.training.synthetic import DIGIT_STROKES, place_strokes
    from draw2digit.widget import DrawingPad

    pad = DrawingPad(predictor, feedback=FeedbackStore(tmp_path / "f.sqlite3"))
    pad.mode.value = "number"
    size = (pad.canvas.width, pad.canvas.height)
    strokes = []
    for k, d in enumerate((4, 2, 7)):
        strokes += place_strokes(DIGIT_STROKES[d], size, (0.05 + 0.32 * k, 0.1, 0.3 + 0.32 * k, 0.9))
    assert pad.draw(strokes).number == "427"
    pad.correct(3, position=1)
    assert "Learned: your 3 (digit 2 saved as a 3)" in pad.correct_status.value
    assert pad.number.number == "437", "the number shown follows at once"
    assert "Digit 2: Read as 3 because you taught it" in pad.confidence.value
    pad.clear()
    assert pad.draw(strokes).number == "437" and "Digit 2" in pad.confidence.value
