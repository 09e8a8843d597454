"""Every AWX job template (extensions/awx/job_templates.yml) run as AWX runs
it: ansible-runner with a private data dir - the project, an inventory
holding the environment's connection settings (in AWX: the inventory and its
credentials), and the survey's answers as env/extravars - against a healthy
local sandbox with payments. Each scenario finds no symptom and changes
nothing; triage opens no incident; health verification is healthy; resolve
without an open incident says so.
"""
import json
import os

import ansible_runner
import pytest
import yaml

from tests.e2e.conftest import sandbox_inventory
from tests.helpers.servers import REPO, VENV_BIN

pytestmark = pytest.mark.e2e
SANDBOX_PAYMENTS = True  # the scenario 4 template needs the Stripe stand-in

with open(os.path.join(REPO, 'extensions', 'awx', 'job_templates.yml')) as _fh:
    TEMPLATES = yaml.safe_load(_fh)['svpms_awx_job_templates']


def survey_answers(template, **answers):
    """The extra vars AWX sends: each survey question's default, overridden by the operator's answers,
    merged over the template's own extra_vars."""
    out = dict(template.get('extra_vars') or {})
    for question in template['survey']:
        out[question['variable']] = answers.get(question['variable'], question.get('default'))
    return out


@pytest.fixture(autouse=True)
def venv_on_path(monkeypatch):
    """AWX's execution environment has ansible-playbook on PATH; here it is the venv's."""
    monkeypatch.setenv('PATH', VENV_BIN + os.pathsep + os.environ.get('PATH', ''))


def run_as_awx(box, tmp_path, template, **answers):
    pdd = tmp_path / ('pdd-%s' % template['playbook'].split('/')[-1].replace('.yml', ''))
    os.makedirs(pdd / 'env')
    os.symlink(REPO, pdd / 'project')  # AWX checks the project out into the private data dir
    # the inventory: the sandbox's, with its connection settings as group vars (AWX: inventory + credentials)
    sandbox_inventory(box, pdd / 'inventory')
    extravars = survey_answers(template, **answers)
    with open(pdd / 'env' / 'extravars', 'w') as fh:
        yaml.safe_dump(extravars, fh)
    incidents, health = tmp_path / 'incidents', tmp_path / 'health'
    with open(pdd / 'env' / 'envvars', 'w') as fh:
        yaml.safe_dump({'ANSIBLE_COLLECTIONS_PATH': os.path.join(REPO, '.collections'),
                        'ANSIBLE_CONFIG': os.path.join(REPO, 'ansible.cfg'),
                        'SVPMS_INCIDENT_ROOT': str(incidents), 'SVPMS_HEALTH_DIR': str(health)}, fh)
    result = ansible_runner.run(private_data_dir=str(pdd), playbook=template['playbook'], quiet=True, timeout=600)
    with open(result.stdout.name) as fh:
        stdout = fh.read()
    assert 'Traceback' not in stdout
    return result, stdout, incidents, health


def summary(incidents, incident_id):
    with open(incidents / incident_id / 'summary.json') as fh:
        return json.load(fh)


@pytest.mark.parametrize('template', [t for t in TEMPLATES if 'scenario_' in t['playbook']], ids=lambda t: t['name'])
def test_scenario_templates_find_no_symptom_on_a_healthy_service(sandbox, tmp_path, template):
    before = sandbox.service()['taskDefinition']
    incident_id = 'awx-%s' % template['playbook'].split('/')[-1][9:-4]
    result, stdout, incidents, _health = run_as_awx(sandbox, tmp_path, template, incident_id=incident_id)
    assert (result.status, result.rc) == ('successful', 0), stdout[-4000:]
    assert summary(incidents, incident_id)['outcome'] == 'no_incident'
    assert 'Symptom absent' in stdout
    assert sandbox.service()['taskDefinition'] == before


def test_triage_template_opens_no_incident(sandbox, tmp_path):
    [template] = [t for t in TEMPLATES if t['playbook'] == 'playbooks/triage.yml']
    result, stdout, incidents, _health = run_as_awx(sandbox, tmp_path, template, incident_id='awx-triage')
    assert (result.status, result.rc) == ('successful', 0), stdout[-4000:]
    assert 'svpms-api: P3 - no rule matched: no incident' in stdout, stdout[-3000:]
    assert not (incidents / 'awx-triage').exists(), 'a healthy service opens no incident'


def test_health_verification_template_is_healthy(sandbox, tmp_path):
    [template] = [t for t in TEMPLATES if t['playbook'] == 'playbooks/health_verification.yml']
    result, stdout, _incidents, health = run_as_awx(sandbox, tmp_path, template)
    assert (result.status, result.rc) == ('successful', 0), stdout[-4000:]
    with open(health / 'health.json') as fh:
        assert json.load(fh)['verdict'] == 'healthy'


def test_resolve_template_without_an_open_incident_says_so(sandbox, tmp_path):
    [template] = [t for t in TEMPLATES if t['playbook'] == 'playbooks/resolve.yml']
    result, stdout, _incidents, _health = run_as_awx(sandbox, tmp_path, template, incident_id='awx-none')
    assert result.status == 'failed' and result.rc != 0
    assert 'No incident awx-none for svpms-api' in stdout, stdout[-3000:]


def test_every_template_names_an_existing_playbook_and_a_valid_survey():
    assert len(TEMPLATES) == 7
    for template in TEMPLATES:
        assert os.path.exists(os.path.join(REPO, template['playbook'])), template['playbook']
        for question in template['survey']:
            assert question['type'] in ('text', 'multiplechoice', 'integer', 'password')
            if question['type'] == 'multiplechoice':
                assert question['default'] in question['choices']
