"""How often the sensors on a packet's path are evaluated.

A packet crosses four sensors from drop to its campaign's send: packet_arrival (the drop zone
is listed), packet_landed, contacts_refreshed and campaign_triggers (each reads only Dagster's
own run and event storage, no warehouse). Under the daemon, the wait between one run's end and
the next run's request is up to the sensor's minimum interval; the sensor daemon itself loops
every 5 s at the fastest. The chained sensors therefore run at that floor, and the drop zone,
whose listing is an S3 or SFTP call in production, every 15 s: at most 30 s of pacing from
drop to send instead of the 120 s of four 30 s intervals.
"""

# the sensor daemon's own loop time (dagster._daemon.sensor.MIN_INTERVAL_LOOP_TIME)
CHAINED_SENSOR_INTERVAL_SECONDS = 5
DROPZONE_LISTING_INTERVAL_SECONDS = 15
