# One user's upload of a file no longer answers for another user's upload of the same file.

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("tracker", "0014_summary_rollups_folding"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="bulkupload",
            name="bulkupload_unique_file_per_target",
        ),
        migrations.AddConstraint(
            model_name="bulkupload",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "failed"), _negated=True),
                fields=("created_by", "target_key", "sha256"),
                name="bulkupload_unique_file_per_target",
            ),
        ),
    ]
