"""Rotating the data-encryption key: old ciphertexts still read, and `flask reencrypt` moves them on."""

import sqlalchemy as sa
from cryptography.fernet import Fernet

from app.accounts.models import Citizen
from app.applications.models import Application, ApplicationMaterial
from app.applications.storage import upload_storage
from app.connectors.models import Connector
from app.extensions import db
from app.pii import PiiVault
from tests.application_flow import PDF


def test_reencrypt_moves_every_value_and_file_to_the_new_key(app, make_app, tmp_path):
    old_key = app.config["DATA_ENCRYPTION_KEYS"].split(",")[0]
    with app.app_context():
        citizen = Citizen(openid="rotate-me", id_number_encrypted=app.extensions["pii"].encrypt("410105198503120013"))
        db.session.add(citizen)
        db.session.commit()
        citizen_id = citizen.id

    # An uploaded file, sealed with the old key in a directory both apps use.
    uploads = {"UPLOAD_STORAGE": "local", "UPLOAD_DIR": str(tmp_path / "uploads")}
    original = make_app(**uploads)
    with original.app_context():
        stored = upload_storage().put(PDF)
        application = Application(citizen_id=citizen_id, matter_code="BDC-QR-001", matter_version=1,
                                  acting_user=f"citizen:{citizen_id}")
        db.session.add(application)
        db.session.flush()
        db.session.add(ApplicationMaterial(application_id=application.id, material_code="SALE_CONTRACT",
                                           via="upload", storage_key=stored.key, acting_user=application.acting_user))
        db.session.commit()

    new_key = Fernet.generate_key().decode()
    rotated = make_app(DATA_ENCRYPTION_KEYS=f"{new_key},{old_key}", **uploads)
    result = rotated.test_cli_runner().invoke(args=["reencrypt"])
    assert result.exit_code == 0, result.output
    # The ID number, the six sandbox connectors' secrets and the upload file.
    assert "re-encrypted 8 values" in result.output

    new_only_app = make_app(DATA_ENCRYPTION_KEYS=new_key, **uploads)
    with new_only_app.app_context():
        assert upload_storage().open(stored.key) == PDF

    with rotated.app_context():
        token = db.session.get(Citizen, citizen_id).id_number_encrypted
        new_only = PiiVault(encryption_keys=[new_key], pseudonym_key="x")
        assert new_only.decrypt(token) == "410105198503120013"
        for connector in db.session.scalars(sa.select(Connector)):
            assert len(new_only.decrypt(connector.secret_encrypted)) >= 32
