"""`make demo`, the rehearsal the README offers first, runs end to end on the shipped dev
stack as it is today: a modality sends a study in plaintext to the site proxy the program
renders, whose forwarder moves it over mutual TLS to the cloud; every instance arrives
intact (pixel digests) and the proxy ends empty. It is also the plain forwarding case of
tests/integration/test_dicom_proxy.py, which covers the faults."""

from __future__ import annotations

from tools.demo import rehearse


def test_the_rehearsal_moves_every_instance_intact(tmp_path, capsys):
    ok = rehearse(tmp_path)
    output = capsys.readouterr().out
    assert ok, output
    assert "10/10 instances arrived intact; 0 left on the proxy." in output
