"""Rotating the data-encryption key: old ciphertexts still read, and `flask reencrypt` moves them on."""

import sqlalchemy as sa
from cryptography.fernet import Fernet

from app.accounts.models import Citizen
from app.connectors.models import Connector
from app.extensions import db
from app.pii import PiiVault


def test_reencrypt_moves_every_value_to_the_new_key(app, make_app):
    old_key = app.config["DATA_ENCRYPTION_KEYS"].split(",")[0]
    with app.app_context():
        citizen = Citizen(openid="rotate-me", id_number_encrypted=app.extensions["pii"].encrypt("410105198503120013"))
        db.session.add(citizen)
        db.session.commit()
        citizen_id = citizen.id

    new_key = Fernet.generate_key().decode()
    rotated = make_app(DATA_ENCRYPTION_KEYS=f"{new_key},{old_key}")
    result = rotated.test_cli_runner().invoke(args=["reencrypt"])
    assert result.exit_code == 0, result.output
    assert "re-encrypted 7 values" in result.output  # the ID number and the six sandbox connectors' secrets

    with rotated.app_context():
        token = db.session.get(Citizen, citizen_id).id_number_encrypted
        new_only = PiiVault(encryption_keys=[new_key], pseudonym_key="x")
        assert new_only.decrypt(token) == "410105198503120013"
        for connector in db.session.scalars(sa.select(Connector)):
            assert len(new_only.decrypt(connector.secret_encrypted)) >= 32
