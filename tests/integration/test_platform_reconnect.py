"""Back at once when the platform returns (issue 22): with the default reconnect settings (full-jitter
backoff capped at 10 s) the gateway delivers again soon after the platform is back, whether the port
was closed during the outage (connections refused) or held by a host that does not answer (SYNs
dropped: the non-blocking connect gives up after 5 s instead of the kernel's two minutes of SYN
retries). Not timed tightly: delivery within 12 s of the return."""

import time

from tbgwtest import GatewayTestCase, SilentPort, main, test_connector, wait_for


class Reconnect(GatewayTestCase):
    def _outage(self, seconds, silent):
        gw = self.gateway([test_connector(devices=1, intervalMs=100, messages=0, keys=1)]).start()
        wait_for(lambda: self.platform.telemetry(), 15, what="telemetry before the outage")
        self.platform.stop()
        self.broker.stop()
        hole = SilentPort(self.broker.port) if silent else None
        time.sleep(seconds)
        if hole:
            hole.close()
        self.broker.start()
        back = time.time()
        self.platform.resume()
        self.platform.clear()
        wait_for(lambda: self.platform.telemetry(), 12, what="telemetry within 12 s of the platform's return")
        took = time.time() - back
        print("first value %.2f s after the platform's return" % took)
        # the stored values and the new ones both arrive: the session works, it is not a stray pack
        wait_for(lambda: len(self.platform.telemetry()) >= 10, 10, what="steady telemetry after the return")
        return gw

    def test_back_within_12s_after_a_12s_outage(self):
        gw = self._outage(12, silent=False)
        self.assertIn("connection refused: nothing listens on port", gw.log())
        self.assertEqual(gw.stop(), 0)

    def test_silent_host_attempt_times_out_and_does_not_delay_the_return(self):
        gw = self._outage(12, silent=True)
        self.assertIn("connection timed out: host does not answer within 5 s", gw.log())
        self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    main()
