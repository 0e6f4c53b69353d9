"""edgeprof-agent: the device daemon that runs profiling jobs pushed over MQTT.

Importing this package loads neither a runtime nor NumPy.
"""

__version__ = "0.1.0"
