"""Job and JobMetric now belong to the job platform (webapp.jobs, job_platform 0001), which kept their tables:
only this app's state lets go of them; no table or row changes."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0011_job_kind_from_registry'),
        ('job_platform', '0001_moved_from_experiments'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[
            migrations.AlterField(
                model_name='trainedmodel',
                name='job',
                field=models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='trained_model',
                                           to='job_platform.job'),
            ),
            migrations.DeleteModel(name='JobMetric'),
            migrations.DeleteModel(name='Job'),
        ], database_operations=[]),
    ]
