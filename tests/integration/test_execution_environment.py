"""The execution environment definition (execution-environment.yml, bindep.txt):
`ansible-builder create` writes a build context with this collection's
tarball, its Python requirements and system packages. Building the image
needs a container engine, which this machine does not have (documented in the
README, not run).
"""
import os
import shutil
import subprocess

import yaml

from tests.helpers.servers import REPO, VENV_BIN


def test_ansible_builder_create_writes_the_context(tmp_path):
    for name in ('execution-environment.yml', 'bindep.txt', 'requirements.txt'):
        shutil.copy(os.path.join(REPO, name), tmp_path / name)
    build = subprocess.run([os.path.join(VENV_BIN, 'ansible-galaxy'), 'collection', 'build', '--force',
                            '--output-path', str(tmp_path / 'build'), REPO],
                           capture_output=True, text=True, timeout=300, check=False)
    assert build.returncode == 0, build.stdout + build.stderr
    with open(os.path.join(REPO, 'galaxy.yml')) as fh:
        version = yaml.safe_load(fh)['version']
    tarball = 'svpms-incident_response-%s.tar.gz' % version
    assert (tmp_path / 'build' / tarball).exists()
    with open(tmp_path / 'execution-environment.yml') as fh:
        ee = yaml.safe_load(fh)
    # the EE names the tarball of the version galaxy.yml says (a version bump must update it)
    assert ee['additional_build_files'] == [{'src': 'build/%s' % tarball, 'dest': 'collection'}]
    assert ee['dependencies']['galaxy']['collections'][0]['name'] == '/build/collection/%s' % tarball
    proc = subprocess.run([os.path.join(VENV_BIN, 'ansible-builder'), 'create', '-f', 'execution-environment.yml',
                           '-c', 'context', '--output-filename', 'Containerfile'],
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    context = tmp_path / 'context'
    containerfile = (context / 'Containerfile').read_text()
    assert 'ansible-galaxy collection install' in containerfile
    assert 'quay.io/fedora/fedora:40' in containerfile
    build_dir = context / '_build'
    assert (build_dir / 'collection' / tarball).exists()
    requirements = (build_dir / 'requirements.txt').read_text()
    for package in ('boto3', 'psycopg2-binary', 'redis', 'requests'):
        assert package in requirements
    assert 'postgresql [platform:rpm]' in (build_dir / 'bindep.txt').read_text()
    galaxy = yaml.safe_load((build_dir / 'requirements.yml').read_text())
    assert galaxy['collections'][0]['name'] == '/build/collection/%s' % tarball
