"""SupportLens: customer-support intelligence on serverless AWS.

`domain` holds pure logic (no boto3, no environment); `adapters` are the only
place that talks to AWS; `settings` turns a Lambda environment into typed settings.
"""

__version__ = "0.1.0"
