"""The portal, the emails and the reasons shown to people exist in German and French, and the
compiled catalogues the product reads are the ones written in the .po files."""

import gettext
import shutil
import subprocess
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import UserFactory
from tests.services import _missing

LOCALE = Path(settings.BASE_DIR) / "locale"
LANGUAGES = ["de", "fr"]
# One string of each kind people read, as each language has it.
PORTAL_TAB = {"de": "Zugriffspakete", "fr": "Packages d'accès"}


def catalogue(language):
    return LOCALE / language / "LC_MESSAGES" / "django.po"


def require_msgfmt():
    return shutil.which("msgfmt") or _missing("GNU gettext's msgfmt (apt install gettext)")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_catalogue_is_complete_and_the_committed_mo_is_compiled_from_it(language, tmp_path):
    msgfmt = require_msgfmt()
    compiled = tmp_path / "django.mo"
    result = subprocess.run(
        [msgfmt, "--check-format", "--statistics", "-o", str(compiled), str(catalogue(language))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # "N translated messages." and nothing untranslated or fuzzy.
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr

    with compiled.open("rb") as fresh, catalogue(language).with_suffix(".mo").open("rb") as kept:
        fresh_catalog = gettext.GNUTranslations(fresh)._catalog
        kept_catalog = gettext.GNUTranslations(kept)._catalog
    assert kept_catalog == fresh_catalog, "run scripts/messages --compile and commit the .mo"


@pytest.mark.django_db
@pytest.mark.parametrize("language", LANGUAGES)
def test_my_access_is_shown_in_the_language_chosen_with_the_switcher(client, requester, language):
    client.force_login(requester)

    response = client.post("/language/", {"language": language, "next": "/access-packages/"})
    page = client.get("/access-packages/")

    assert response.status_code == 302
    assert response.headers["Location"] == "/access-packages/"
    assert f'<html lang="{language}">' in page.text
    assert PORTAL_TAB[language] in page.text
    requester.refresh_from_db()
    assert requester.preferred_language == language  # their emails follow


@pytest.mark.django_db
def test_a_signed_in_person_sees_their_preferred_language_on_a_new_browser(client):
    client.force_login(UserFactory(preferred_language="de"))

    assert PORTAL_TAB["de"] in client.get("/access-packages/").text


@pytest.mark.django_db
def test_the_switcher_ignores_an_unknown_language_and_a_foreign_next(client, requester):
    client.force_login(requester)

    response = client.post("/language/", {"language": "xx", "next": "https://evil.test/"})

    assert response.headers["Location"] == "/"
    assert settings.LANGUAGE_COOKIE_NAME not in response.cookies
    requester.refresh_from_db()
    assert requester.preferred_language == ""


def test_the_switcher_changes_nothing_on_get(client):
    assert client.get("/language/").status_code == 405


@pytest.mark.django_db
def test_the_language_this_browser_chose_wins_over_the_preferred_one(client):
    client.force_login(UserFactory(preferred_language="de"))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "fr"

    assert PORTAL_TAB["fr"] in client.get("/access-packages/").text
